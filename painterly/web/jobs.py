"""Jobs of the web app: stored under the data folder, queued, run one (or N) at a time on worker
threads through painterly's public API, and resumed from their checkpoints after a restart.

A job's folder, data/jobs/ID/, holds job.json (its request and state, written atomically at every
change of state), the uploaded inputs under names of ours, preview.png while it runs, result.png when
done, and run.ckpt (the run's checkpoint, every CHECKPOINT_SECONDS) while it runs. IDs are random hex
and checked against ID_PATTERN before any path is made from one.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import painterly

from .terms import in_api_terms

ID_PATTERN = re.compile(r"^[0-9a-f]{16}$")
QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
FINISHED = (DONE, FAILED, CANCELLED)
CHECKPOINT_SECONDS = 20.0
# A preview is rendered at most every PREVIEW_SECONDS, and never more often than keeps its cost (render
# plus PNG) under PREVIEW_SHARE of the run's time.
PREVIEW_SECONDS = 1.0
PREVIEW_SHARE = 0.04


def valid_id(job_id: str) -> bool:
    return bool(ID_PATTERN.match(job_id))


@dataclass
class Job:
    """What job.json holds: the request (method, options, input names) and the state."""

    id: str
    method: str
    options: dict
    inputs: dict            # content: name, styles: [names], content_guidance: bool, style_guidance: int
    created: float
    state: str = QUEUED
    started: Optional[float] = None
    finished: Optional[float] = None
    error: Optional[str] = None
    size: Optional[list] = None  # the result's (width, height), as the progress's size
    estimated_seconds: Optional[float] = None  # the plan's time estimate at submission (the page shows it)
    # in memory only
    progress: dict = field(default_factory=dict)
    preview_seconds: float = 0.0
    resumed_from_step: Optional[int] = None  # the step this server's run went on from (0: from the start)
    has_preview: bool = False
    cancel_requested: bool = False  # stored too: a server stopped before the run honoured it does not rerun it
    checkpointer: Any = None

    def record(self) -> dict:
        """What job.json holds (a copy of the stored fields only; nothing of the running state)."""
        return json.loads(json.dumps({name: getattr(self, name) for name in STORED}))


STORED = ("id", "method", "options", "inputs", "created", "state", "started", "finished", "error", "size",
          "cancel_requested", "estimated_seconds")


class JobStore:
    """All jobs, their folders and the queue; worker threads take jobs from it in order."""

    def __init__(self, data: Path, workers: int = 1) -> None:
        self.root = Path(data) / "jobs"
        self.root.mkdir(parents=True, exist_ok=True)
        self.jobs: dict[str, Job] = {}
        self.queue: list[str] = []
        self.lock = threading.Condition()
        self.version = 0  # bumped at every change: the event streams poll it
        self.stopping = False
        self.workers = workers
        self.threads: list[threading.Thread] = []
        self._load()

    # --- files --------------------------------------------------------------------------------
    def folder(self, job_id: str) -> Path:
        if not valid_id(job_id):
            raise KeyError(job_id)
        return self.root / job_id

    def new_folder(self) -> tuple[str, Path]:
        job_id = secrets.token_hex(8)
        folder = self.folder(job_id)
        folder.mkdir()
        return job_id, folder

    def discard(self, folder: Path) -> None:
        """Remove a folder made for a request that was refused."""
        if folder.parent == self.root and valid_id(folder.name):
            shutil.rmtree(folder, ignore_errors=True)

    def _write(self, job: Job) -> None:
        painterly.write_bytes_atomic(json.dumps(job.record(), indent=1).encode(), self.folder(job.id) / "job.json")

    def _load(self) -> None:
        """Jobs from an earlier server: finished ones as they were, queued and running ones queued again
        (running first, each resuming from its checkpoint)."""
        found = []
        for path in self.root.glob("*/job.json"):
            if not valid_id(path.parent.name):
                continue
            try:
                record = json.loads(path.read_text())
                job = Job(**{k: v for k, v in record.items() if k in STORED})
            except (OSError, ValueError, TypeError) as exc:
                print(f"painterly serve: warning: job {path.parent.name} is unreadable ({exc}); shown as failed",
                      file=sys.stderr)
                job = Job(path.parent.name, "?", {}, {"content": "?", "styles": [], "content_guidance": False,
                                                       "style_guidance": 0}, path.stat().st_mtime, FAILED,
                          error="its record (job.json) is unreadable")
            if job.id == path.parent.name:
                found.append(job)
        for folder in self.root.iterdir():  # folders of requests that never became jobs (a crash mid-upload)
            if folder.is_dir() and valid_id(folder.name) and not (folder / "job.json").exists():
                shutil.rmtree(folder, ignore_errors=True)
        found.sort(key=lambda j: (j.state != RUNNING, j.created))
        for job in found:
            self.jobs[job.id] = job
            if job.state in (QUEUED, RUNNING) and job.cancel_requested:  # cancelled, then the server stopped
                job.state, job.finished = CANCELLED, job.finished or time.time()
                saved = self.folder(job.id) / "run.ckpt"
                history = painterly.LossHistory()  # the curve of what it did, as a cancel the run honoured
                history.records = painterly.Checkpointer(saved).saved_extra("log") or []
                _write_loss_curve(history, self.folder(job.id))
                saved.unlink(missing_ok=True)
                self._write(job)
            elif job.state in (QUEUED, RUNNING):
                job.state = QUEUED
                self.queue.append(job.id)

    # --- the API's side -------------------------------------------------------------------------
    def add(self, job: Job) -> None:
        with self.lock:
            self.jobs[job.id] = job
            self._write(job)
            self.queue.append(job.id)
            self._changed()

    def get(self, job_id: str) -> Optional[Job]:
        return self.jobs.get(job_id) if valid_id(job_id) else None

    def listing(self) -> list[Job]:
        """Every job, newest first (a copy, safe while jobs are added)."""
        with self.lock:
            return sorted(self.jobs.values(), key=lambda j: j.created, reverse=True)

    def status(self, job: Job) -> dict:
        """The job as the API shows it."""
        with self.lock:
            record = job.record()
            record["position"] = self.queue.index(job.id) + 1 if job.id in self.queue else None
            record["progress"] = dict(job.progress)
            record["preview_seconds"] = round(job.preview_seconds, 3)
            record["resumed_from_step"] = job.resumed_from_step
            # a finished job's preview is on disk after a restart too (the flag is this process's)
            record["has_preview"] = job.has_preview or (job.state in FINISHED and
                                                        (self.folder(job.id) / "preview.png").exists())
            record["has_result"] = job.state == DONE
            return record

    def cancel(self, job: Job) -> bool:
        """Cancel a queued or running job (a running one stops at its next iteration); False if finished."""
        with self.lock:
            if job.state in FINISHED:
                return False
            job.cancel_requested = True
            if job.id in self.queue:
                self.queue.remove(job.id)
                self._finish(job, CANCELLED)
            else:  # running: it stops at its next step; recorded now, lest a restart run it again
                self._write(job)
                if job.checkpointer is not None:
                    job.checkpointer.request_stop()
            self._changed()
            return True

    def remove(self, job: Job) -> bool:
        """Forget a finished job and delete its folder (uploads, result, preview, curve); False if it has
        not finished (cancel it first: a run must not lose its folder under it)."""
        with self.lock:
            if job.state not in FINISHED or self.jobs.get(job.id) is not job:
                return False
            del self.jobs[job.id]
            (self.folder(job.id) / "job.json").unlink(missing_ok=True)  # first: a folder left in part is no job
            shutil.rmtree(self.folder(job.id), ignore_errors=True)
            self._changed()
            return True

    def _changed(self) -> None:
        self.version += 1
        self.lock.notify_all()

    def _finish(self, job: Job, state: str, error: Optional[str] = None) -> None:
        job.state, job.error, job.finished = state, error, time.time()
        self._write(job)

    # --- the workers' side ----------------------------------------------------------------------
    def start(self) -> None:
        for i in range(self.workers):
            thread = threading.Thread(target=self._work, name=f"painterly-job-{i}", daemon=True)
            thread.start()
            self.threads.append(thread)

    def stop(self, timeout: float = 60.0) -> None:
        """Stop the workers: running jobs save a checkpoint at their next iteration and stay 'running'
        in job.json, so the next server resumes them."""
        with self.lock:
            self.stopping = True
            for job in self.jobs.values():
                if job.state == RUNNING and job.checkpointer is not None:
                    job.checkpointer.request_stop()
            self.lock.notify_all()
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _next(self) -> Optional[Job]:
        with self.lock:
            while not self.stopping and not self.queue:
                self.lock.wait()
            if self.stopping:
                return None
            job = self.jobs[self.queue.pop(0)]
            job.resumed_from_step, job.has_preview, job.preview_seconds = None, False, 0.0
            job.state, job.started, job.error = RUNNING, job.started or time.time(), None
            job.checkpointer = painterly.Checkpointer(self.folder(job.id) / "run.ckpt", seconds=CHECKPOINT_SECONDS)
            self._write(job)
            self._changed()
            return job

    def _work(self) -> None:
        while True:
            try:
                job = self._next()
            except Exception as exc:  # e.g. a full disk writing job.json: keep the worker alive
                print(f"painterly serve: warning: could not start a job ({exc})", file=sys.stderr)
                time.sleep(1.0)
                continue
            if job is None:
                return
            try:
                self._run(job)
            except Exception as exc:  # a bug or a full disk around the run: fail it, go on to the next
                self._fail(job, job.checkpointer, f"unexpected {type(exc).__name__}: {exc}")

    def _run(self, job: Job) -> None:
        folder = self.folder(job.id)
        ckpt = job.checkpointer
        ckpt.resume = ckpt.path.exists()
        try:
            self._attempt(job, folder, ckpt)
        except painterly.PainterlyError:
            if not ckpt.resume or job.resumed_from_step is not None:
                raise
            # the checkpoint could not be resumed (another painterly version, other hardware): start afresh
            ckpt.path.unlink(missing_ok=True)
            ckpt.resume = False
            self._attempt(job, folder, ckpt)

    def _attempt(self, job: Job, folder: Path, ckpt) -> None:
        styles = [str(folder / f"style_{i}.upload") for i in range(len(job.inputs["styles"]))]
        guides: dict[str, Any] = {}
        if job.inputs.get("content_guidance"):
            guides["content_guidance"] = str(folder / "content_guidance_0.upload")
        if job.inputs.get("style_guidance"):
            guides["style_guidance"] = [str(folder / f"style_guidance_{i}.upload")
                                        for i in range(job.inputs["style_guidance"])]
        preview = Previewer(job, folder / "preview.png", self)
        history = painterly.LossHistory()
        ckpt.extra["log"] = history.records  # the curve goes on across a restart, as the CLI's --log does
        try:
            image = painterly.stylize(str(folder / "content_0.upload"), styles, method=job.method,
                                      callback=painterly.combine(preview, history), checkpoint=ckpt, **guides,
                                      **job.options)
            if job.cancel_requested:  # cancelled as it finished (or a one-pass method that does not stop)
                raise painterly.Interrupted(0, 1, 0, 0, None)
            painterly.save_image(image, folder / "result.png")
        except painterly.Interrupted:
            if job.cancel_requested:  # the curve of what it did, as a finished job's
                _write_loss_curve(history, folder)
            with self.lock:
                if job.cancel_requested:
                    ckpt.path.unlink(missing_ok=True)
                    self._finish(job, CANCELLED)
                # else the server is stopping: the job stays 'running' on disk and resumes next time
                self._changed()
            return
        except painterly.PainterlyError as exc:
            if ckpt.resume and job.resumed_from_step is None:
                raise  # _run retries from the start once
            self._fail(job, ckpt, str(exc).replace(str(folder) + "/", ""))
            return
        except MemoryError:
            self._fail(job, ckpt, "out of memory; try a smaller size")
            return
        except Exception as exc:  # a bug: the job fails with one line and the next job starts
            self._fail(job, ckpt, f"unexpected {type(exc).__name__}: {exc}")
            return
        _write_loss_curve(history, folder)
        with self.lock:
            job.size = [image.width, image.height]
            self._finish(job, DONE)
            self._changed()

    def _fail(self, job: Job, ckpt, message: str) -> None:
        with self.lock:
            ckpt.path.unlink(missing_ok=True)
            self._finish(job, FAILED, in_api_terms(message))  # one line, in the API's terms
            self._changed()

    def progressed(self) -> None:
        with self.lock:
            self._changed()


def _write_loss_curve(history, folder: Path) -> None:
    """loss.png in the job's folder: the curve of an optimisation (a forward pass has no loss to plot). A
    curve that cannot be written (a full disk) costs the job nothing: its result is saved already."""
    if not history.has_losses:
        return
    try:
        history.write_plot(folder / "loss.png")
    except Exception as exc:  # noqa: BLE001
        print(f"painterly serve: the loss curve of {folder.name} was not written ({exc})", file=sys.stderr)


class Previewer:
    """The run's callback: progress for the status and event stream, and a preview PNG now and then,
    throttled so rendering costs under PREVIEW_SHARE of the run's time."""

    def __init__(self, job: Job, path: Path, store: JobStore) -> None:
        self.job, self.path, self.store = job, path, store
        self.last = 0.0
        self.cost = 0.0  # the last preview's

    def __call__(self, info: painterly.StepInfo) -> None:
        if self.job.resumed_from_step is None:
            self.job.resumed_from_step = info.step - 1
        self.job.progress = {"scale": info.scale + 1, "scales": info.scales, "iteration": info.iteration,
                             "iterations": info.iterations, "step": info.step, "size": list(info.size[::-1]),
                             "elapsed": round(info.elapsed, 3),
                             "losses": {k: float(v) for k, v in info.losses.items()}}
        now = time.monotonic()
        within_budget = self.job.preview_seconds + self.cost <= PREVIEW_SHARE * info.elapsed
        due = now - self.last >= PREVIEW_SECONDS or info.iteration >= info.iterations  # or a scale's last
        if within_budget and due:
            t0 = time.perf_counter()
            painterly.save_image(info.preview(), self.path)
            self.cost = time.perf_counter() - t0
            self.job.preview_seconds += self.cost
            self.job.has_preview = True
            self.last = time.monotonic()
        self.store.progressed()
