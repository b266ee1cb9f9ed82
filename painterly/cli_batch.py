"""`painterly batch`: many stylisations, resumable, with a progress bar over the jobs and a summary.

    painterly batch photos/ --style starry_night.jpg the_scream.jpg -o out/ --size 512
    painterly batch photos/*.jpg --model starry_night four_paintings -o out/
    painterly batch --manifest jobs.csv -o out/ --retries 2 --summary out/summary.csv
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from .cli_flags import _method_in, config_flags
from .cli_args import EXIT_FAILURE, EXIT_OK, _Parser, _positive_int, _UsageError, add_config_flags
from . import (DEFAULT_METHOD, BatchJob, available_methods, check_devices, check_jobs, check_writable, expand_images, options_for,
               pair_jobs, read_manifest, run_batch)


def build_batch_parser(method: str = DEFAULT_METHOD) -> argparse.ArgumentParser:
    registered = available_methods()
    shown = registered.get(method, registered[DEFAULT_METHOD])
    p = _Parser(prog="painterly batch",
                usage="painterly batch CONTENT... (--style STYLE... | --model MODEL... | --manifest FILE) -o DIR",
                description="Stylise many images: every CONTENT (files, globs or folders) with every style or "
                            "model, or the jobs of a manifest. Finished outputs are skipped, so a re-run continues.",
                allow_abbrev=False)
    p.add_argument("contents", nargs="*", metavar="CONTENT", help="content images: files, globs or folders")
    p.add_argument("--style", dest="batch_styles", nargs="+", default=[], metavar="STYLE",
                   help="style images (each its own job, or all together with --style-set)")
    p.add_argument("--model", dest="batch_models", nargs="+", default=[], metavar="MODEL",
                   help="trained networks (bundled names or files), each its own job")
    p.add_argument("--manifest", metavar="FILE",
                   help="a CSV (columns content, style, model, output, options) or JSON list of jobs")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="folder for the results")
    p.add_argument("--method", choices=list(registered), default=None, help="the method for every job")
    p.add_argument("--retries", type=int, default=1, metavar="N", help="retries of a failing job [1]")
    p.add_argument("--summary", metavar="FILE", help="the summary file (.json or .csv) [DIR/summary.json]")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                   help="run on a Ray cluster: 'auto', ray://HOST:10001, or no value for a local one started here")
    p.add_argument("--workers", type=_positive_int, metavar="N", help="Ray workers (actors) [2]")
    p.add_argument("--cpus-per-worker", type=float, metavar="N", help="CPUs each Ray worker takes [1]")
    p.add_argument("--gpus-per-worker", type=float, metavar="N", help="GPUs each Ray worker takes [0]")
    flags = {k: v for k, v in config_flags().items() if k != "model"}
    add_config_flags(p, flags, shown.config_class(), list(registered), shown.name)
    return p


def _with_shared(job: BatchJob, options: dict) -> BatchJob:
    """A manifest job with the command line's options that its method takes (its own win)."""
    method = job.options.get("method") or options.get("method") or job.method()
    return BatchJob(job.name, job.content, job.styles, job.output, {**options_for(method, options), **job.options})


def batch_command(words: Sequence[str]) -> int:
    from pathlib import Path

    args = build_batch_parser(_method_in(words)).parse_intermixed_args(list(words))
    if args.retries < 0:
        raise _UsageError("--retries must not be negative")
    ray_only = [flag for flag, value in (("--workers", args.workers), ("--cpus-per-worker", args.cpus_per_worker),
                                         ("--gpus-per-worker", args.gpus_per_worker)) if value is not None]
    if ray_only and not args.ray:  # here the jobs run one after another in this process
        raise _UsageError(f"{', '.join(ray_only)}: Ray workers; add --ray (a local cluster, or a cluster's address)")
    if Path(args.output).exists() and not Path(args.output).is_dir():
        raise _UsageError(f"-o names the folder the outputs go to, and '{args.output}' is a file")
    options = {name: getattr(args, name) for name in config_flags() if hasattr(args, name) and name != "model"}
    if args.method:
        options["method"] = args.method
    if args.manifest:
        if args.contents or args.batch_styles or args.batch_models:
            raise _UsageError("a manifest holds the jobs: give no CONTENT, --style or --model beside it")
        jobs = read_manifest(args.manifest, args.output)
        jobs = check_jobs([_with_shared(j, options) for j in jobs])
    else:
        style_set = bool(options.pop("style_set", False))
        jobs = pair_jobs(expand_images(args.contents), expand_images(args.batch_styles), args.batch_models,
                         args.output, options, style_set=style_set)
    summary = args.summary or str(Path(args.output) / "summary.json")
    executor, made = None, not Path(args.output).exists()
    try:
        if args.ray:  # connected before the bar is drawn: a cluster that is not there is one line
            from . import RayExecutor

            given = {name: value for name, value in (("workers", args.workers), ("cpus", args.cpus_per_worker),
                                                     ("gpus", args.gpus_per_worker)) if value is not None}
            executor = RayExecutor(None if args.ray == "local" else args.ray, retries=args.retries, **given)
        else:  # before the bar is drawn, as the cluster's connection is (run_batch checks them too, for the API)
            check_devices(jobs)
        Path(args.output).mkdir(parents=True, exist_ok=True)
        check_writable(summary, (".json", ".csv"))  # before the first job, not after it
    except BaseException:  # a refused batch leaves no empty output folder behind
        if executor is not None:
            executor.close()
        if made:
            try:
                Path(args.output).rmdir()
            except OSError:
                pass
        raise
    bar = None
    if not args.quiet:
        from tqdm import tqdm

        bar = tqdm(total=len(jobs), file=sys.stderr, dynamic_ncols=True, unit="job", desc="batch")

    def progress(result, count, total) -> None:
        if bar is not None:
            bar.update(1)
            bar.set_postfix_str(f"{result.name}: {result.status}", refresh=True)
        if result.status == "failed":
            print(f"painterly: {result.name} failed after {result.attempts} attempt(s): {result.error}", file=sys.stderr)

    try:
        results = run_batch(jobs, executor=executor, retries=args.retries, summary=summary, callback=progress)
    finally:
        if bar is not None:
            bar.close()
        if executor is not None:
            executor.close()
    counts = {s: sum(r.status == s for r in results) for s in ("done", "skipped", "failed")}
    if not args.quiet:
        skipped = (f"{counts['skipped']} skipped (already there, as they were made: delete them or write to another "
                   "-o to make them again with other options)") if counts["skipped"] else "0 skipped"
        print(f"painterly: {counts['done']} done, {skipped}, {counts['failed']} failed; summary in {summary}",
              file=sys.stderr)
    return EXIT_FAILURE if counts["failed"] else EXIT_OK
