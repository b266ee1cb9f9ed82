"""Batches: the job list (pairs, manifests and their errors), skip / redo / retry, the summary, and the
`painterly batch` command end to end on tiny jobs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

import painterly
from painterly.batch import DONE, FAILED, SKIPPED, BatchJob, run_job

TINY = {"size": 32, "iterations": 2, "scales": 1, "seed": 0}


@pytest.fixture
def images(tmp_path):
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    for name, color in (("a.png", (200, 30, 30)), ("sub/b.jpg", (30, 200, 30)), ("style.png", (20, 20, 220))):
        Image.new("RGB", (40, 30), color).save(folder / name)
    return folder


def test_pairs_cover_every_content_with_every_style_and_model(images, tmp_path):
    contents = painterly.expand_images([str(images / "a.png"), str(images / "sub")])
    jobs = painterly.pair_jobs(contents, [str(images / "style.png")], ["starry_night"], str(tmp_path / "out"), TINY)
    assert [j.name for j in jobs] == ["a__style", "a__starry_night", "b__style", "b__starry_night"]
    assert jobs[1].options["model"] == "starry_night" and jobs[1].styles == ()
    assert jobs[0].output == str(tmp_path / "out" / "a__style.png")
    assert painterly.expand_images([str(images / "*.png")]) == [str(images / "a.png"), str(images / "style.png")]
    with pytest.raises(painterly.PainterlyError, match="matches no file"):
        painterly.expand_images([str(images / "*.gif")])


def test_a_folder_of_unusual_names_gives_every_picture_in_number_order(images, tmp_path):
    """A user's zoo: 'photo [1].png' was taken for a glob matching nothing; a folder named x.jpg and a broken
    link under a folder refused the whole batch ('does not exist'); same.png beside same.jpg both wrote
    same__...png and the batch was refused; frame 10 came before frame 2."""
    zoo = tmp_path / "zoo"
    zoo.mkdir()
    for name in ("photo [1].png", "same.png", "same.jpg", "f2.png", "f10.png"):
        Image.new("RGB", (40, 30), (90, 120, 150)).save(zoo / name)
    (zoo / "folder.jpg").mkdir()
    (zoo / "gone.png").symlink_to(zoo / "nowhere.png")
    assert painterly.expand_images([str(zoo / "photo [1].png")]) == [str(zoo / "photo [1].png")]
    found = painterly.expand_images([str(zoo)])
    assert [Path(f).name for f in found] == ["f2.png", "f10.png", "photo [1].png", "same.jpg", "same.png"]
    jobs = painterly.pair_jobs(found, [str(images / "style.png")], [], str(tmp_path / "out"), TINY)
    assert [j.name for j in jobs] == ["f2__style", "f10__style", "photo [1]__style", "same-jpg__style",
                                      "same-png__style"]
    long = zoo / ("x" * 240 + ".png")  # its output, x..x__style.png, would be 251 bytes: fine; __starry... not
    Image.new("RGB", (40, 30)).save(long)
    assert len(painterly.pair_jobs([str(long)], [str(images / "style.png")], [], str(tmp_path / "out"), TINY)) == 1
    with pytest.raises(painterly.PainterlyError, match="over the file system's 255 bytes"):
        painterly.pair_jobs([str(long)], [], ["starry_night"], str(tmp_path / "out"), {"size": 32})


def test_photos_of_one_name_in_several_folders_keep_their_folders_under_the_output(images, tmp_path):
    """A camera's IMG_0001.jpg in two folders made two jobs write one file, and the whole batch was refused;
    those keep their folders below the one they share, while the others stay side by side."""
    (images / "sub" / "deeper").mkdir()
    Image.new("RGB", (40, 30)).save(images / "sub" / "deeper" / "a.png")
    jobs = painterly.pair_jobs(painterly.expand_images([str(images)]), [], ["starry_night"], str(tmp_path / "out"),
                               {"size": 32})
    outputs = sorted(Path(j.output).relative_to(tmp_path / "out").as_posix() for j in jobs)
    assert outputs == ["a__starry_night.png", "b__starry_night.png", "style__starry_night.png",
                       "sub/deeper/a__starry_night.png"]
    # styles of one name (a painting's two scans) were refused as writing one file; a model named as a
    # style is said to be the model
    Image.new("RGB", (40, 30)).save(images / "sub" / "deeper" / "style.png")
    jobs = painterly.pair_jobs([str(images / "a.png")], [str(images / "style.png"),
                                                          str(images / "sub" / "deeper" / "style.png")],
                               ["style"], str(tmp_path / "out"), {"size": 32})
    assert sorted(Path(j.output).name for j in jobs) == ["a__model-style.png", "a__style.png",
                                                          "a__sub-deeper-style.png"]


def test_manifest_reads_csv_and_json(images, tmp_path):
    csv_path = images / "jobs.csv"
    csv_path.write_text('content,style,output,options\n'
                        'a.png,style.png,first.png,"{""size"": 32}"\n'
                        'sub/b.jpg,style.png;a.png,second.png,\n')
    jobs = painterly.read_manifest(csv_path, str(tmp_path / "out"))
    assert [j.output for j in jobs] == [str(tmp_path / "out" / "first.png"), str(tmp_path / "out" / "second.png")]
    assert jobs[0].options == {"size": 32} and jobs[1].styles == (str(images / "style.png"), str(images / "a.png"))
    json_path = images / "jobs.json"
    json_path.write_text(json.dumps([{"content": "a.png", "model": "starry_night", "output": "m.png"}]))
    (job,) = painterly.read_manifest(json_path)
    assert job.options == {"model": "starry_night"} and job.output == str(images / "m.png")
    bom = images / "bom.csv"  # as spreadsheets save it, with blank lines
    bom.write_text("\ufeffcontent,style\na.png,style.png\n,\n", encoding="utf-8")
    (job,) = painterly.read_manifest(bom)
    assert job.content == str(images / "a.png") and job.output == str(images / "a__style.png")


@pytest.mark.parametrize("body, words", [
    ("content,style,output\nmissing.png,style.png,x.png\n", "does not exist"),
    ('content,style,output,options\na.png,style.png,x.png,"{""colour"": 1}"\n', "unknown option"),
    ("content,style,output\na.png,style.png,x.png\nsub/b.jpg,style.png,x.png\n", "both write"),
    ("content,style,oops\na.png,style.png,x\n", "unknown column"),
    ('content,style,options\na.png,style.png,{not json\n', "not valid JSON"),
    ("content,style\n,style.png\n", "no content"),
    ("content,style,output\na.png,style.png,x.gif\n", "unknown extension"),
    ("content,style,output\n\n", "holds no jobs"),
])
def test_manifest_errors_are_one_line_before_any_work(images, body, words):
    path = images / "bad.csv"
    path.write_text(body)
    with pytest.raises(painterly.PainterlyError, match=words) as error:
        painterly.read_manifest(path)
    assert "\n" not in str(error.value)


def test_skip_redo_and_retry(images, tmp_path):
    out = tmp_path / "out.png"
    job = BatchJob("j", str(images / "a.png"), (str(images / "style.png"),), str(out), TINY)
    calls = []

    def flaky(content, styles, **options):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("a transient failure")
        return Image.new("RGB", (32, 24), (1, 2, 3))

    killed_writes = [tmp_path / ".out.png.k1l2d3.part", tmp_path / ".out.png.part.png"]  # atomic_save's, video's
    for stale in killed_writes:
        stale.write_bytes(b"half")
    kept = tmp_path / ".other.png.x.part"  # another output's: not this job's to remove
    kept.write_bytes(b"half")
    result = run_job(job, retries=1, stylize_fn=flaky)
    assert result.status == DONE and result.attempts == 2 and out.exists()
    assert not any(p.exists() for p in killed_writes) and kept.exists()
    assert run_job(job, stylize_fn=flaky).status == SKIPPED and len(calls) == 2  # finished: not run again
    out.write_bytes(out.read_bytes()[:40])  # a partial output (e.g. from another tool) is redone
    assert run_job(job, stylize_fn=flaky).status == DONE and len(calls) == 3

    def broken(content, styles, **options):
        raise painterly.NotAnImageError("always fails")

    other = BatchJob("k", job.content, job.styles, str(tmp_path / "never.png"), TINY)
    failed = run_job(other, retries=2, stylize_fn=broken)  # an unreadable input: not tried again
    assert failed.status == FAILED and failed.attempts == 1 and failed.error == "always fails"
    # a refusal that may pass later (the memory free when the job starts) is tried again
    busy = run_job(other, retries=1, stylize_fn=lambda *a, **k: (_ for _ in ()).throw(
        painterly.PainterlyError("no size fits in the 0.1 GiB available")))
    assert busy.status == FAILED and busy.attempts == 2
    assert not (tmp_path / "never.png").exists()

    def crashing(content, styles, **options):
        raise RuntimeError("worker lost")

    crashed = run_job(other, retries=2, stylize_fn=crashing)
    assert crashed.status == FAILED and crashed.attempts == 3 and crashed.error == "worker lost"


def test_the_batch_command_runs_resumes_and_reports(images, tmp_path, capsys):
    from painterly.cli import main

    (images / "sub" / "broken.png").write_bytes(b"not a png")  # fails every attempt, the rest go on
    out = tmp_path / "out"
    flags = ["--size", "32", "--iterations", "2", "--scales", "1", "--seed", "0", "--quiet"]
    code = main(["batch", str(images / "a.png"), str(images / "sub"), "--style", str(images / "style.png"),
                 "-o", str(out), "--retries", "1", *flags])
    assert code == 1  # one job failed
    summary = {r["name"]: r for r in json.loads((out / "summary.json").read_text())}
    assert summary["a__style"]["status"] == "done" and summary["b__style"]["status"] == "done"
    assert summary["broken__style"]["status"] == "failed" and summary["broken__style"]["attempts"] == 1
    assert "corrupt" in summary["broken__style"]["error"] or "not an image" in summary["broken__style"]["error"]
    assert Image.open(out / "a__style.png").size == (32, 24)
    (images / "sub" / "broken.png").unlink()
    code = main(["batch", str(images / "a.png"), str(images / "sub"), "--style", str(images / "style.png"),
                 "-o", str(out), "--summary", str(out / "again.csv"), *flags])
    assert code == 0
    rows = (out / "again.csv").read_text().splitlines()
    assert rows[0].startswith("name,output,status") and all(",skipped," in r for r in rows[1:]) and len(rows) == 3
    assert main(["batch", "--manifest", str(images / "nope.csv"), "-o", str(out)]) == 2


def test_an_output_folder_that_is_a_file_and_a_ray_cluster_that_is_not_there_are_one_line(images, tmp_path, capsys,
                                                                                            monkeypatch):
    """-o photo.jpg said "cannot access 'photo.jpg': File exists" (exit 1); --ray auto with no cluster
    quoted Ray's advice to set its --address flag, which painterly has not, under a progress bar."""
    from painterly.cli import main

    taken = tmp_path / "photo.jpg"
    taken.write_bytes(b"x")
    assert main(["batch", str(images / "a.png"), "--model", "starry_night", "-o", str(taken), "-q"]) == 2
    assert "-o names the folder the outputs go to, and" in capsys.readouterr().err
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        pytest.skip("a Ray cluster is running in this process")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    code = main(["batch", str(images / "a.png"), "--model", "starry_night", "-o", str(tmp_path / "out"), "--ray",
                 "auto"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("painterly: error: no Ray cluster running here"), err
    assert "--address" not in err[0] and not (tmp_path / "out" / "summary.json").exists()


def test_what_would_fail_every_job_is_refused_before_the_first(images, tmp_path, capsys, monkeypatch):
    """A style that is no image, or a device this machine lacks, failed job after job (each after its retries);
    Ray's worker flags without --ray were ignored. A truncated content is not retried: it reads the same."""
    from painterly import batch
    from painterly.cli import main

    calls = []
    monkeypatch.setattr(batch, "stylize", lambda *a, **k: calls.append(a) or torch.rand(1, 3, 8, 8))
    (tmp_path / "fake.png").write_bytes(b"not a png")
    out = str(tmp_path / "out")
    assert main(["batch", str(images / "a.png"), "--style", str(tmp_path / "fake.png"), "-o", out, "-q"]) == 2
    assert "style image '" in capsys.readouterr().err
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    assert main(["batch", str(images / "a.png"), "--style", str(images / "style.png"), "-o", out, "--device",
                 "cuda"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["painterly: error: device 'cuda' is not available (no CUDA GPU found)"]
    assert not Path(out).exists()  # a refused batch leaves no empty output folder
    assert main(["batch", str(images / "a.png"), "--style", str(images / "style.png"), "-o", out, "--workers",
                 "3"]) == 2
    assert "--workers: Ray workers; add --ray" in capsys.readouterr().err
    assert calls == [] and not (tmp_path / "out" / "summary.json").exists()
    whole = (images / "a.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(whole[: len(whole) // 2])
    result = batch.run_job(batch.BatchJob("cut", str(tmp_path / "cut.png"), (str(images / "style.png"),),
                                          str(tmp_path / "o.png"), {}), retries=3,
                           stylize_fn=lambda content, *a, **k: batch.open_image(content))
    assert result.status == "failed" and result.attempts == 1 and "corrupt or truncated" in result.error


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    import os

    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


def test_a_local_ray_cluster_runs_the_batch_and_survives_a_killed_worker(ray_cluster, images, tmp_path):
    import os
    import signal

    contents = [str(images / "a.png"), str(images / "sub" / "b.jpg")] * 3
    jobs = [BatchJob(f"j{i}", c, (str(images / "style.png"),), str(tmp_path / "out" / f"j{i}.png"),
                     {**TINY, "iterations": 6}) for i, c in enumerate(contents)]
    executor = painterly.RayExecutor(workers=2, cpus=1)
    pids = [ray_cluster.get(a.pid.remote()) for a in executor.actors]
    killed = []

    def kill_once(result, count, total):
        if count == 1 and not killed:
            for pid in pids:  # both workers die: the busy one mid-job, its job retried on its restart
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)

    results = painterly.run_batch(jobs, executor=executor, callback=kill_once)
    new_pids = [ray_cluster.get(a.pid.remote()) for a in executor.actors]
    executor.close()
    assert killed and not set(new_pids) & set(pids)  # Ray restarted both
    assert {r.status for r in results} <= {DONE, SKIPPED} and len(results) == len(jobs)
    outputs = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert outputs == sorted(f"j{i}.png" for i in range(len(jobs)))  # each once, no temporary files left
    assert all(Image.open(tmp_path / "out" / name).size == (32, 24) for name in outputs)


def test_a_video_content_is_one_job_writing_one_clip(images, tmp_path):
    pytest.importorskip("av")
    pytest.importorskip("cv2")
    import torch
    from fractions import Fraction

    from painterly.videoio import VideoSink, VideoSource

    clip = images / "clip.mp4"
    sink = VideoSink(clip, (24, 32), Fraction(8))
    for i in range(4):
        sink.write(torch.linspace(0, 1, 32).view(1, 1, 1, 32).expand(1, 3, 24, 32).roll(i, -1).contiguous())
    sink.close()
    jobs = painterly.pair_jobs(painterly.expand_images([str(images)]), [], ["starry_night"], str(tmp_path / "out"),
                               {"size": 32})
    video_job = next(j for j in jobs if j.content.endswith("clip.mp4"))
    assert video_job.output.endswith("clip__starry_night.mp4")
    results = {r.output: r for r in painterly.run_batch(jobs)}
    assert results[video_job.output].status == DONE and VideoSource(video_job.output).info.frames == 4
    again = {r.output: r for r in painterly.run_batch(jobs)}
    assert {r.status for r in again.values()} == {SKIPPED}


def test_a_batch_refuses_what_it_would_drop_or_fail_on_late_and_never_repaints_its_outputs(images, tmp_path, capsys):
    """Only networks: an optimiser's option is refused, not dropped; the summary's place and extension are
    checked before the first job; outputs written into the photos' own folder are not taken as photos by a
    re-run (which finds every job done)."""
    from painterly.cli import main

    with pytest.raises(painterly.PainterlyError, match="--iterations, --seed: a trained network takes no such option"):
        painterly.pair_jobs([str(images / "a.png")], [], ["starry_night"], str(tmp_path), {"iterations": 5, "seed": 1})
    assert painterly.pair_jobs([str(images / "a.png")], [str(images / "style.png")], ["starry_night"], str(tmp_path),
                               {"iterations": 5})[1].options == {"model": "starry_night"}  # a mixed batch: its share
    out = tmp_path / "out"
    for summary, fragment in (("nowhere/s.json", "does not exist"), ("s.txt", "unknown extension")):
        capsys.readouterr()
        assert main(["batch", str(images / "a.png"), "--model", "starry_night", "-o", str(out), "--size", "32",
                     "--summary", str(tmp_path / summary), "--quiet"]) == 2
        assert fragment in capsys.readouterr().err and not list(out.glob("*.png"))
    words = ["batch", str(images / "sub"), "--model", "starry_night", "-o", str(images / "sub"), "--size", "32", "--quiet"]
    assert main(words) == 0 and (images / "sub" / "b__starry_night.png").is_file()
    assert main(words) == 0
    assert sorted(p.name for p in (images / "sub").glob("*.png")) == ["b__starry_night.png"]
    rows = json.loads((images / "sub" / "summary.json").read_text())
    assert [(r["name"], r["status"]) for r in rows] == [("b__starry_night", "skipped")]
