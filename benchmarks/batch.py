"""Batch throughput: the plain local loop, `painterly batch` locally, and on a local Ray cluster of 1
and 2 workers, in one run, plus Ray's per-job overhead for small jobs and a fault-tolerance run.

Jobs: the photos of ../shared/data/photos with the bundled Starry Night network at 256 px (the work a
large batch would do), and the same with Gatys (20 iterations, 128 px) for optimisation-sized jobs.

    python benchmarks/batch.py [--jobs 20] [--kill 2]
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import painterly  # noqa: E402

PHOTOS = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "photos"


def jobs_for(folder: Path, count: int, options: dict) -> list[painterly.BatchJob]:
    photos = painterly.expand_images([str(PHOTOS)])
    return [painterly.BatchJob(f"j{i:03d}", photos[i % len(photos)], (), str(folder / f"j{i:03d}.png"), options)
            for i in range(count)]


def timed(work) -> float:
    t0 = time.perf_counter()
    work()
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=20)
    p.add_argument("--kill", type=int, default=2, help="workers killed during the fault-tolerance run")
    args = p.parse_args()
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    network = {"model": "starry_night", "size": 256}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        jobs = jobs_for(root / "warm", 2, network)
        painterly.run_batch(jobs)  # load the model and VGG once
        plain = jobs_for(root / "plain", args.jobs, network)

        def loop() -> None:
            (root / "plain").mkdir()
            for job in plain:
                painterly.save_image(painterly.stylize(job.content, **job.options), job.output)

        rows.append(("plain stylize() loop", timed(loop)))
        rows.append(("painterly batch, local", timed(lambda: painterly.run_batch(
            jobs_for(root / "local", args.jobs, network)))))
        for workers in (1, 2):
            executor = painterly.RayExecutor(workers=workers, cpus=2 / workers)
            painterly.run_batch(jobs_for(root / f"rwarm{workers}", workers, network), executor=executor)
            rows.append((f"batch --ray, {workers} worker(s)", timed(lambda: painterly.run_batch(
                jobs_for(root / f"ray{workers}", args.jobs, network), executor=executor))))
            executor.close()
        base = rows[0][1]
        print(f"{args.jobs} jobs: bundled Starry Night network at 256 px, 2 cores")
        print(f"{'runner':<28}{'seconds':>9}{'images/min':>12}{'vs plain':>10}{'overhead s/job':>16}")
        for label, seconds in rows:
            print(f"{label:<28}{seconds:>9.1f}{60 * args.jobs / seconds:>12.1f}{seconds / base:>10.2f}"
                  f"{(seconds - base) / args.jobs:>16.3f}")

        # fault tolerance: kill a worker `kill` times while the batch runs
        executor = painterly.RayExecutor(workers=2, cpus=1)
        import ray

        victims = []

        def killer() -> None:
            for _ in range(args.kill):
                time.sleep(4)
                pid = ray.get(executor.actors[len(victims) % 2].pid.remote())
                os.kill(pid, signal.SIGKILL)
                victims.append(pid)

        folder = root / "faults"
        gatys = {"size": 128, "iterations": 20, "scales": 1, "seed": 0}
        jobs = [painterly.BatchJob(j.name, j.content, (str(Path(painterly.__file__).parent / "examples" / "starry_night.jpg"),),
                                   j.output, gatys) for j in jobs_for(folder, args.jobs, {})]
        thread = threading.Thread(target=killer)
        t0 = time.perf_counter()
        thread.start()
        results = painterly.run_batch(jobs, executor=executor)
        seconds = time.perf_counter() - t0
        thread.join()
        executor.close()
        undisturbed_executor = painterly.RayExecutor(workers=2, cpus=1)
        t1 = time.perf_counter()
        painterly.run_batch([painterly.BatchJob(j.name, j.content, j.styles, str(root / "calm" / Path(j.output).name),
                                                j.options) for j in jobs], executor=undisturbed_executor)
        calm = time.perf_counter() - t1
        undisturbed_executor.close()
        outputs = sorted(folder.iterdir())
        readable = sum(painterly.batch.finished(p) for p in outputs)
        print(f"fault tolerance: {len(jobs)} Gatys jobs (128 px, 20 it), 2 workers, {len(victims)} killed: "
              f"{sum(r.status == 'done' for r in results)} done, {len(outputs)} files, {readable} readable; "
              f"{seconds:.1f} s against {calm:.1f} s undisturbed ({seconds - calm:+.1f} s lost)")


if __name__ == "__main__":
    main()
