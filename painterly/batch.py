"""Batches of stylisation jobs: every content x style (or model) pair, or a manifest, run resumably.

A job is one stylize() call writing one image, or, for a video content, one stylize_video() call
writing one clip (frames of a clip depend on each other, so a clip is one job; clips run in parallel). An output that exists and reads back as an image is
skipped, so a killed batch re-run continues where it stopped; outputs are written atomically, so a
partial one never exists (a stray temporary file is ignored and replaced). A failing job is retried
`retries` times, then recorded as failed without stopping the rest. The summary (JSON, or CSV by its
extension) lists every job with its status, attempts, seconds and error, rewritten atomically after
each job. Jobs run here one after another; the executor is pluggable so the same batch runs on Ray.
"""

from __future__ import annotations

import csv
import glob
import io
import json
import os
import shutil
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional, Sequence, Union

from .api import asks_size_max, make_config, method_for, method_options, stylize
from .errors import DamagedImageError, ImageTooLargeError, NotAnImageError, PainterlyError
from .hardware import resolve_device
from .image import (NAME_MAX, READ_SUFFIXES, SAVE_FORMATS, name_fits, natural_key, open_image, remove_stale_parts,
                    save_image, write_bytes_atomic)
from .videoio import VIDEO_SUFFIXES, VideoSource, is_video_path, work_folder

DONE, SKIPPED, FAILED = "done", "skipped", "failed"


@dataclass(frozen=True)
class BatchJob:
    """One output image: its content, its styles (or a model in the options), its options."""

    name: str
    content: str
    styles: tuple[str, ...]
    output: str
    options: dict = field(default_factory=dict)

    def method(self) -> str:
        return self.options.get("method") or method_for(k for k in self.options if k != "method")


@dataclass
class JobResult:
    name: str
    output: str
    status: str
    attempts: int = 0
    seconds: float = 0.0
    error: str = ""


# --- building the job list -------------------------------------------------------------------------

def expand_images(patterns: Sequence[str]) -> list[str]:
    """Files named, matched by a glob, or found under a folder (recursively), sorted, without repeats."""
    found: list[str] = []
    for pattern in patterns:
        path = Path(pattern)
        if path.is_dir():  # its files (a folder named x.jpg, a broken link: not pictures to paint)
            found += sorted((str(p) for p in path.rglob("*")
                             if p.suffix.lower() in (*READ_SUFFIXES, *VIDEO_SUFFIXES) and p.is_file()), key=natural_key)
        elif any(c in pattern for c in "*?[") and not path.exists():  # 'photo [1].png' is a file, not a pattern
            matches = sorted(glob.glob(pattern, recursive=True), key=natural_key)
            if not matches:
                raise PainterlyError(f"'{pattern}' matches no file")
            found += matches
        elif path.exists():
            found.append(str(path))
        else:
            raise PainterlyError(f"'{pattern}' does not exist")
    return list(dict.fromkeys(found))


def options_for(method: str, options: dict) -> dict:
    """The options among `options` that `method` takes (shared flags of a mixed batch: no iterations for
    a network)."""
    takes = {o["name"] for o in method_options(method)} | {"method"}
    return {k: v for k, v in options.items() if k in takes}


def output_folders(contents: Sequence[str]) -> dict[str, Path]:
    """Where under -o each content's outputs go: beside the others, unless other contents share its name
    (IMG_0001.jpg in two of a camera's folders); those keep their folders below the one they share."""
    by_stem: dict[str, list[str]] = {}
    for content in contents:
        by_stem.setdefault(Path(content).stem, []).append(content)
    places = {content: Path() for content in contents}
    for same in by_stem.values():
        if len(same) > 1:
            parents = [Path(os.path.abspath(c)).parent for c in same]
            root = Path(os.path.commonpath(parents))
            for content, parent in zip(same, parents):
                places[content] = parent.relative_to(root)
    return places


def distinct_stems(paths: Sequence[str]) -> dict[str, str]:
    """Each file's name without its extension, or with it where another file of its folder has the same name
    (same.png and same.jpg: both wrote same__style.png, and the batch was refused)."""
    def key(path: str) -> tuple[str, str]:
        return os.path.dirname(os.path.abspath(path)), Path(path).stem

    count = Counter(key(p) for p in dict.fromkeys(paths))
    return {p: f"{Path(p).stem}-{Path(p).suffix.lstrip('.').lower()}" if count[key(p)] > 1 else Path(p).stem
            for p in paths}


def pair_jobs(contents: Sequence[str], styles: Sequence[str], models: Sequence[str], output_dir: str,
              options: dict, style_set: bool = False) -> list[BatchJob]:
    """Every content with every style (or, with style_set, with all the styles at once) and every model."""
    if not contents:
        raise PainterlyError("no content images")
    if not styles and not models:
        raise PainterlyError("give style images or models")
    if not styles:  # only networks: an option they do not take would be dropped unseen
        unused = sorted(set(options) - set(options_for(method_for(["model"]), options)))
        if unused:
            raise PainterlyError(f"{', '.join('--' + u.replace('_', '-') for u in unused)}: a trained network takes no "
                                 f"such option")
    sides: list[tuple[str, tuple[str, ...], dict]] = []  # (label, style images, options)
    if styles:
        groups = [tuple(styles)] if style_set else [(s,) for s in styles]
        places = output_folders(styles)  # styles sharing a name: told apart by their folders, as contents are
        stems = distinct_stems(styles)
        for group in groups:
            label = "set" if style_set else "-".join((*places[group[0]].parts, stems[group[0]]))
            sides.append((label, group, dict(options)))
    if models:  # a model's jobs take only the options its method has (no iterations for a network)
        shared = options_for(method_for(["model"]), options)
        taken = {label for label, _, _ in sides}
        # a model named as a style is (--model starry_night beside starry_night.jpg): said to be the model
        sides += [(f"model-{Path(model).stem}" if Path(model).stem in taken else Path(model).stem, (),
                   {**shared, "model": model}) for model in models]

    def jobs_of(images: Sequence[str]) -> list[BatchJob]:
        places, stems = output_folders(images), distinct_stems(images)
        jobs = []
        for content in images:
            for label, group, side_options in sides:
                name = (places[content] / f"{stems[content]}__{label}").as_posix()
                suffix = ".mp4" if is_video_path(content) else ".png"
                jobs.append(BatchJob(name, os.path.abspath(content), tuple(os.path.abspath(s) for s in group),
                                     os.path.abspath(Path(output_dir) / f"{name}{suffix}"), side_options))
        return jobs

    # a re-run whose contents hold the outputs of the first (-o inside the photos' folder) does not repaint them
    outputs = {job.output for job in jobs_of(contents)}
    return check_jobs(jobs_of([c for c in contents if os.path.abspath(c) not in outputs]))


def read_manifest(path: Union[str, os.PathLike], output_dir: Optional[str] = None) -> list[BatchJob]:
    """Jobs from a CSV (columns content, style, model, output, options) or JSON list of objects with
    those keys. style: one file or several separated by ';'; options: a JSON object of config fields;
    output: relative to output_dir (default: the manifest's folder)."""
    manifest = Path(path)
    try:
        text = manifest.read_text(encoding="utf-8-sig")  # a spreadsheet's CSV may start with a BOM
    except (OSError, UnicodeDecodeError) as exc:
        raise PainterlyError(f"manifest '{manifest}' cannot be read ({getattr(exc, 'strerror', None) or exc})") from None
    if manifest.suffix.lower() == ".json":
        try:
            rows = json.loads(text)
        except ValueError as exc:
            raise PainterlyError(f"manifest '{manifest}' is not valid JSON ({exc})") from None
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise PainterlyError(f"manifest '{manifest}' must be a JSON list of objects")
    else:
        rows = list(csv.DictReader(io.StringIO(text)))
    base = Path(output_dir) if output_dir else manifest.parent
    here = manifest.parent.resolve()  # absolute, so workers elsewhere (Ray) find the files
    rows = [r for r in rows if any(str(v or "").strip() for v in r.values())]  # blank lines
    if not rows:
        raise PainterlyError(f"manifest '{manifest}' holds no jobs")
    jobs = []
    known = {"content", "style", "model", "output", "options"}
    for number, row in enumerate(rows, start=2 if manifest.suffix.lower() != ".json" else 1):
        where = f"manifest '{manifest.name}' {'line' if manifest.suffix.lower() != '.json' else 'entry'} {number}"
        unknown = sorted(set(k for k in row if k) - known)
        if unknown:
            raise PainterlyError(f"{where}: unknown column(s) {', '.join(unknown)}; use {', '.join(sorted(known))}")
        content = str(row.get("content") or "").strip()
        if not content:
            raise PainterlyError(f"{where}: no content")
        styles = row.get("style") or []
        if isinstance(styles, str):
            styles = [s.strip() for s in styles.split(";") if s.strip()]
        options = row.get("options") or {}
        if isinstance(options, str):
            try:
                options = json.loads(options)
            except ValueError as exc:
                raise PainterlyError(f"{where}: options is not valid JSON ({exc})") from None
        if not isinstance(options, dict):
            raise PainterlyError(f"{where}: options must be a JSON object")
        resolve = lambda p: str(p if Path(p).is_absolute() else here / p)  # noqa: E731
        model = str(row.get("model") or "").strip()
        if model:  # a bundled name stays a name; a file is found beside the manifest
            options = {**options, "model": resolve(model) if (here / model).is_file() else model}
        side = Path(styles[0]).stem if styles else Path(model).stem or "model"
        output = str(row.get("output") or "").strip() or f"{Path(content).stem}__{side}.png"
        jobs.append(BatchJob(Path(output).stem, resolve(content), tuple(resolve(s) for s in styles),
                             os.path.abspath(Path(output) if Path(output).is_absolute() else base / output), options))
    return check_jobs(jobs)


def check_jobs(jobs: Sequence[BatchJob]) -> list[BatchJob]:
    """Refuse, before any work: missing files, style files that are no image (each read once; found job by
    job, they failed every content's job), options no method takes, two jobs writing one output."""
    seen: dict[str, str] = {}
    readable: set[str] = set()
    for job in jobs:
        for path in (job.content, *job.styles):
            if not Path(path).is_file():
                raise PainterlyError(f"job {job.name}: '{path}' does not exist")
        for style in job.styles:
            if style not in readable:
                try:
                    open_image(style, "style image").close()
                except PainterlyError as exc:
                    raise PainterlyError(f"job {job.name}: {exc}") from None
                readable.add(style)
        model = job.options.get("model")
        try:
            options = {k: v for k, v in job.options.items() if k != "method"}
            if asks_size_max(options):  # each job's largest that fits, chosen as it starts
                del options["size"]
            make_config(job.options.get("method"), **options)
        except PainterlyError as exc:
            raise PainterlyError(f"job {job.name}: {exc}") from None
        if model is not None and not isinstance(model, str):
            raise PainterlyError(f"job {job.name}: model must be a name or a file")
        if is_video_path(job.content) != is_video_path(job.output):
            raise PainterlyError(f"job {job.name}: a video content needs a video output and an image one an image")
        if not is_video_path(job.output) and Path(job.output).suffix.lower() not in SAVE_FORMATS:
            raise PainterlyError(f"job {job.name}: output '{job.output}' has an unknown extension; use one of "
                                 f"{', '.join(sorted(SAVE_FORMATS))}")
        # its longest name: a video's work folder beside it; found after the jobs before it ran, it stopped the batch
        if not name_fits(work_folder(job.output).name if is_video_path(job.output) else Path(job.output).name):
            raise PainterlyError(f"job {job.name}: the output's name is over the file system's {NAME_MAX} bytes; "
                                 "shorten the content's or the style's file name")
        key = str(Path(job.output).resolve())
        if key in seen:
            raise PainterlyError(f"jobs {seen[key]} and {job.name} both write '{job.output}'")
        seen[key] = job.name
    return list(jobs)


# --- running it --------------------------------------------------------------------------------------

def finished(output: Union[str, os.PathLike]) -> bool:
    """An output that exists and reads back whole as an image or a video (a job to skip)."""
    try:
        if is_video_path(output):
            return Path(output).is_file() and VideoSource(output).info.frames > 0
        open_image(output, "output").close()
        return True
    except PainterlyError:
        return False


def run_job(job: BatchJob, retries: int = 0, stylize_fn: Callable = stylize) -> JobResult:
    """One job with its retries; a failure is recorded, not raised (KeyboardInterrupt still stops)."""
    if finished(job.output):
        return JobResult(job.name, job.output, SKIPPED)
    start = time.monotonic()
    error = ""
    for attempt in range(1, retries + 2):
        try:
            options = {k: v for k, v in job.options.items() if k != "method"}
            Path(job.output).parent.mkdir(parents=True, exist_ok=True)
            if is_video_path(job.content):  # the clip's frames in order; the file appears whole at the end
                _video_job(job, options)
            else:
                image = stylize_fn(job.content, list(job.styles), method=job.options.get("method"), **options)
                save_image(image, job.output)
            remove_stale_parts(job.output)  # an earlier attempt's worker killed mid-write left its temporary file
            return JobResult(job.name, job.output, DONE, attempt, round(time.monotonic() - start, 3))
        except (NotAnImageError, DamagedImageError, ImageTooLargeError) as exc:  # another attempt reads the same
            error = " ".join(str(exc).split())
            return JobResult(job.name, job.output, FAILED, attempt, round(time.monotonic() - start, 3), error)
        except Exception as exc:  # whatever went wrong, this job is recorded and the batch goes on
            error = " ".join(str(exc).split()) or type(exc).__name__
    return JobResult(job.name, job.output, FAILED, retries + 1, round(time.monotonic() - start, 3), error)


def _video_job(job: BatchJob, options: dict) -> None:
    """A clip: continued from the frames a killed run left (its work folder), else from the start."""
    from .video import stylize_video

    left = (work_folder(job.output) / "plan.json").exists()
    try:
        stylize_video(job.content, list(job.styles), job.output, method=job.options.get("method"), resume=left,
                      **options)
    except PainterlyError:
        if not left:
            raise
        shutil.rmtree(work_folder(job.output), ignore_errors=True)  # not resumable: a fresh start, not a refusal
        stylize_video(job.content, list(job.styles), job.output, method=job.options.get("method"), **options)


class LocalExecutor:
    """Jobs one after another in this process (the VGG weights stay cached between them)."""

    def __init__(self, retries: int = 0) -> None:
        self.retries = retries

    def run(self, jobs: Sequence[BatchJob]) -> Iterator[JobResult]:
        for job in jobs:
            yield run_job(job, self.retries)


def write_summary(results: Iterable[JobResult], path: Union[str, os.PathLike]) -> None:
    rows = [asdict(r) for r in results]
    if Path(path).suffix.lower() == ".csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(asdict(JobResult("", "", "")).keys()))
        writer.writeheader()
        writer.writerows(rows)
        data = buffer.getvalue().encode()
    else:
        data = json.dumps(rows, indent=1).encode()
    write_bytes_atomic(data, path)


def check_devices(jobs: Sequence[BatchJob]) -> None:
    """Refuse a device the jobs name that this machine lacks (--device cuda without a GPU): found job by job,
    it failed every job after its retries. For jobs run here; a cluster's workers have their own."""
    for device in sorted({str(j.options["device"]) for j in jobs if j.options.get("device") is not None}):
        resolve_device(device)


def run_batch(jobs: Sequence[BatchJob], *, executor=None, retries: int = 0,
              summary: Union[None, str, os.PathLike] = None,
              callback: Optional[Callable[[JobResult, int, int], None]] = None) -> list[JobResult]:
    """Run every job (skipping finished outputs), rewriting the summary after each; returns the results
    in job order. callback(result, finished_count, total) after each job. Run here (no executor), the
    devices are checked first (check_devices)."""
    if executor is None:
        check_devices(jobs)
    executor = executor or LocalExecutor(retries)
    by_output: dict[str, JobResult] = {}  # outputs are unique (check_jobs); names need not be
    for result in executor.run(list(jobs)):
        by_output[result.output] = result
        if summary is not None:
            write_summary([by_output[j.output] for j in jobs if j.output in by_output], summary)
        if callback is not None:
            callback(result, len(by_output), len(jobs))
    return [by_output[j.output] for j in jobs if j.output in by_output]
