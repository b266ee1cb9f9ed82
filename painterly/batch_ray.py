"""The batch's Ray executor: long-lived workers (actors) that keep VGG19 and the models loaded
between jobs, one resource request per job, results written straight to the shared output folder.

Fault tolerance is Ray's: an actor that dies (its process killed, its node lost) is restarted by Ray
(`max_restarts`) and the job it was running is retried (`max_task_retries`) on a live one. Each job
is idempotent (a finished output is skipped, writes are atomic renames), so every output appears
exactly once however often a job ran. Needs the `ray` extra: pip install 'painterly[ray]'.
"""

from __future__ import annotations

import math
import os
from typing import Iterator, Optional, Sequence

from .batch import FAILED, SKIPPED, BatchJob, JobResult, finished, run_job
from .errors import PainterlyError
from .recipe import PLUGINS_VARIABLE, load_plugins


def _ray():
    try:
        import ray
    except ImportError:
        raise PainterlyError("--ray needs Ray: pip install 'painterly[ray]'") from None
    return ray


class RayExecutor:
    """Run jobs on `workers` actors of a Ray cluster (`address`: 'auto', 'ray://host:10001', or None
    for a local cluster started here), each actor taking `cpus` CPUs and `gpus` GPUs."""

    def __init__(self, address: Optional[str] = None, workers: int = 2, cpus: float = 1.0, gpus: float = 0.0,
                 retries: int = 0, job_retries: int = 3) -> None:
        ray = _ray()
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        if not ray.is_initialized():
            try:
                plugins = os.environ.get(PLUGINS_VARIABLE)  # the workers load the plugins this process names
                ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False,
                         **({} if address else {"num_cpus": max(1, math.ceil(workers * cpus))}),
                         **({"runtime_env": {"env_vars": {PLUGINS_VARIABLE: plugins}}} if plugins else {}))
            except ValueError as exc:  # e.g. a ray:// address without ray[client] installed: Ray says what to do
                said = " ".join(str(exc).split())
                where = f"at '{address}'" if address else "started here"
                raise PainterlyError(f"cannot use the Ray cluster {where}: {said}") from None
            except ConnectionError as exc:  # Ray's own words name its --address flag, which painterly has not
                where = "running here" if address == "auto" else f"at '{address}'"
                said = " ".join(str(exc).split()).split(". ")[0].rstrip(".")  # its first sentence, addresses whole
                raise PainterlyError(f"no Ray cluster {where} ({said}); start "
                                     "one with `ray start --head`, give its address (--ray ray://HOST:10001), or "
                                     "give --ray alone for a local one started here") from None
        have = ray.cluster_resources()
        if workers * cpus > have.get("CPU", 0) or workers * gpus > have.get("GPU", 0):
            raise PainterlyError(f"{workers} workers x ({cpus:g} CPUs, {gpus:g} GPUs) do not fit the Ray cluster "
                                 f"({have.get('CPU', 0):g} CPUs, {have.get('GPU', 0):g} GPUs)")
        self.ray, self.retries, self.threads = ray, retries, max(1, int(cpus))
        worker = ray.remote(num_cpus=cpus, num_gpus=gpus, max_restarts=-1, max_task_retries=job_retries)(_Worker)
        self.actors = [worker.remote(int(max(1, cpus))) for _ in range(workers)]

    def run(self, jobs: Sequence[BatchJob]) -> Iterator[JobResult]:
        """Results as they finish; a job whose actor kept dying past its retries is reported failed."""
        ray = self.ray
        pending: dict = {}
        queue = list(jobs)
        idle = list(self.actors)

        def submit(actor) -> None:
            job = queue.pop(0)
            # each job uses its worker's CPUs only (Ray reserves them; it does not pin threads)
            runnable = job if "threads" in job.options else BatchJob(
                job.name, job.content, job.styles, job.output, {**job.options, "threads": self.threads})
            pending[actor.run.remote(runnable, self.retries)] = (actor, job)

        while idle and queue:
            submit(idle.pop(0))
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            actor, job = pending.pop(ready[0])
            try:
                yield ray.get(ready[0])
            except ray.exceptions.RayError as exc:  # the actor died more often than Ray's retries allow
                if finished(job.output):  # it died after writing the output: the job is done
                    yield JobResult(job.name, job.output, SKIPPED)
                else:
                    cause = getattr(exc, "cause", None) or exc
                    yield JobResult(job.name, job.output, FAILED, error=" ".join(f"worker lost: {cause}".split())[:300])
            if queue:
                submit(actor)

    def close(self) -> None:
        for actor in self.actors:
            self.ray.kill(actor)


class _Worker:
    """One Ray actor: painterly imported once, the VGG19 weights cached across its jobs."""

    def __init__(self, threads: int) -> None:
        import torch

        torch.set_num_threads(threads)
        load_plugins(strict=False)  # the methods the head's command line could name

    def run(self, job: BatchJob, retries: int) -> JobResult:
        return run_job(job, retries)

    def pid(self) -> int:
        return os.getpid()
