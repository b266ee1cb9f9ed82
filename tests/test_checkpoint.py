"""Checkpoints: atomic saves, exact resume (L-BFGS history included), refusal of mismatched runs,
and the CLI surviving SIGKILL / SIGINT."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import painterly
import painterly.cli as cli
from painterly.checkpoint import Checkpointer, Interrupted, fingerprint, read_checkpoint
from painterly.driver import run
from painterly.errors import PainterlyError
from painterly.features import FeatureExtractor
from painterly.methods.gatys import GatysConfig

ROOT = Path(__file__).resolve().parent.parent


def _images():
    g = torch.Generator().manual_seed(1)
    content = torch.rand(1, 3, 36, 48, generator=g)
    style = torch.rand(1, 3, 32, 32, generator=g)
    return content, style


@pytest.fixture(scope="module")
def tiny():
    return FeatureExtractor.random(seed=0, last_layer="relu5_1", precision="fp32")


class StopAt:
    """A callback that asks the checkpointer for a stop (as the signal handler does) at a step."""

    def __init__(self, ckpt: Checkpointer, step: int) -> None:
        self.ckpt, self.step = ckpt, step

    def __call__(self, info) -> None:
        if info.step == self.step:
            self.ckpt.request_stop(signal.SIGINT)


@pytest.mark.parametrize("optimizer,init,precision", [("lbfgs", "content", "fp32"), ("adam", "noise", "fp32"),
                                                      ("lbfgs", "content", "bf16")])
def test_resume_reproduces_an_uninterrupted_run_exactly(tmp_path, tiny, optimizer, init, precision):
    content, style = _images()
    if precision == "bf16":
        tiny = FeatureExtractor.random(seed=0, last_layer="relu5_1", precision="bf16")
    config = GatysConfig(size=48, iterations=6, coarse_iterations=5, scales=2, precision=precision, seed=3,
                         style_weight=1e6, optimizer=optimizer, init=init)
    reference = run(content, [style], config, extractor=tiny)
    assert (reference - content).abs().max() > 0.05  # the optimisation really moved the image

    path = tmp_path / "run.ckpt"
    for stop in (3, 7):  # mid coarse scale, then mid final scale (second resume from a resumed run)
        ckpt = Checkpointer(path, every=2, seconds=None, resume=path.exists())
        with pytest.raises(Interrupted) as exc:
            run(content, [style], config, extractor=tiny, checkpoint=ckpt, callback=StopAt(ckpt, stop))
        assert path.exists()
        assert exc.value.image.shape[0] == 1
    assert (exc.value.scale, exc.value.iteration) == (1, 2)
    ckpt = Checkpointer(path, seconds=None, resume=True)
    resumed = run(content, [style], config, extractor=tiny, checkpoint=ckpt)
    assert not path.exists()  # removed after success
    assert torch.equal(resumed, reference)


def test_a_resumed_auto_run_keeps_the_precision_it_began_in(tmp_path, tiny, monkeypatch):
    """auto times bf16 in each process, and on a busy machine a later one may choose otherwise: the
    checkpoint records the precision the run computed in, and the resumed auto run goes on in it
    (else its fingerprint would differ and the resume be refused)."""
    from painterly import hardware

    content, style = _images()
    config = GatysConfig(size=32, iterations=6, scales=1, precision="auto", seed=0, style_weight=1e6)
    monkeypatch.setattr(hardware, "bf16_pays", lambda device="cpu": False)
    reference = run(content, [style], config, extractor=tiny)
    path = tmp_path / "run.ckpt"
    ckpt = Checkpointer(path, seconds=None)
    with pytest.raises(Interrupted):
        run(content, [style], config, extractor=tiny, checkpoint=ckpt, callback=StopAt(ckpt, 3))
    monkeypatch.setattr(hardware, "bf16_pays", lambda device="cpu": True)
    resumed = run(content, [style], config, extractor=tiny, checkpoint=Checkpointer(path, seconds=None, resume=True))
    assert torch.equal(resumed, reference)


def test_a_resumed_run_keeps_the_threads_it_began_on(tmp_path, tiny, monkeypatch, capsys):
    """Another thread count sums each convolution in another order (Gatys drifted by up to 37 levels
    of 255): a resume without threads goes on with the saved run's; asking for others goes on, with a note."""
    from painterly import hardware

    monkeypatch.setattr(hardware, "usable_cpus", lambda dirs=None: 2)
    before = torch.get_num_threads()
    content, style = _images()
    config = GatysConfig(size=32, iterations=6, scales=1, precision="fp32", seed=0, style_weight=1e6, threads=1)
    try:
        reference = run(content, [style], config, extractor=tiny)
        path = tmp_path / "run.ckpt"
        for threads, expected in ((None, 1), (2, 2)):
            path.unlink(missing_ok=True)
            ckpt = Checkpointer(path, seconds=None, keep=True)
            with pytest.raises(Interrupted):
                run(content, [style], config, extractor=tiny, checkpoint=ckpt, callback=StopAt(ckpt, 3))
            assert read_checkpoint(path)["threads"] == 1
            seen: list[int] = []
            resumed = run(content, [style], GatysConfig(**{**config.__dict__, "threads": threads}), extractor=tiny,
                          checkpoint=Checkpointer(path, seconds=None, resume=True),
                          callback=lambda info: seen.append(torch.get_num_threads()))
            assert set(seen) == {expected}
            note = capsys.readouterr().err
            if threads is None:
                assert torch.equal(resumed, reference) and note == ""
            else:
                assert "computed on 1 threads; on 2 the run goes on close to" in note
    finally:
        torch.set_num_threads(before)


def test_lbfgs_state_dict_round_trip_keeps_history(tmp_path, tiny):
    content, style = _images()
    config = GatysConfig(size=32, iterations=4, scales=1, precision="fp32", seed=0, style_weight=1e6)
    path = tmp_path / "a.ckpt"
    ckpt = Checkpointer(path, seconds=None, keep=True)
    with pytest.raises(Interrupted):
        run(content, [style], config, extractor=tiny, checkpoint=ckpt, callback=StopAt(ckpt, 3))
    state = read_checkpoint(path)["state"]
    lbfgs = state["optimizer"]["state"][0]
    assert len(lbfgs["old_dirs"]) == 2 and "H_diag" in lbfgs  # the curvature history is saved
    assert (state["scale"], state["iteration"], state["step"]) == (0, 3, 3)


def test_mismatched_inputs_or_options_are_refused(tmp_path, tiny):
    content, style = _images()
    config = GatysConfig(size=32, iterations=4, scales=1, precision="fp32", seed=0, style_weight=1e6)
    path = tmp_path / "a.ckpt"
    ckpt = Checkpointer(path, seconds=None)
    with pytest.raises(Interrupted):
        run(content, [style], config, extractor=tiny, checkpoint=ckpt, callback=StopAt(ckpt, 2))
    # the refusal names what differs: the checkpoint keeps the options and each input's digest
    for cfg, c, differs in ((config.__class__(**{**config.__dict__, "style_weight": 5.0}), content,
                             "(style_weight 1000000.0 then, 5.0 now); resume"),
                            (config, content.flip(-1), "(the input images differ); resume"),
                            (config.__class__(**{**config.__dict__, "iterations": 5, "seed": 1}), content.flip(-1),
                             "(iterations 4 then, 5 now; seed 0 then, 1 now; the input images differ)")):
        with pytest.raises(PainterlyError, match="other input images or options") as exc:
            run(c, [style], cfg, extractor=tiny, checkpoint=Checkpointer(path, resume=True))
        assert "\n" not in str(exc.value) and differs in str(exc.value), str(exc.value)
    # the same run started again without resume would overwrite its progress: refused; another starts afresh
    with pytest.raises(PainterlyError, match="a.ckpt' holds this run's progress: resume it .*or delete it"):
        run(content, [style], config, extractor=tiny, checkpoint=Checkpointer(path, seconds=None))
    other = config.__class__(**{**config.__dict__, "style_weight": 5.0})
    with pytest.raises(Interrupted):
        run(content, [style], other, extractor=tiny, checkpoint=(ckpt := Checkpointer(path, seconds=None)),
            callback=StopAt(ckpt, 1))
    # max_time does not change the result, so it may differ on resume
    cfg = other.__class__(**{**other.__dict__, "max_time": 1000.0})
    run(content, [style], cfg, extractor=tiny, checkpoint=Checkpointer(path, resume=True))
    # a finished run's kept checkpoint is no progress to lose: the same run again replaces it
    kept = tmp_path / "kept.ckpt"
    for _ in range(2):
        run(content, [style], config, extractor=tiny, checkpoint=Checkpointer(kept, every=1, seconds=None, keep=True))
        assert read_checkpoint(kept)["finished"] is True
    # --keep-checkpoint on a run that ended before its first save was due kept nothing: it keeps the end state
    every_step = read_checkpoint(kept)["state"]
    kept.unlink()
    keeping, not_keeping = Checkpointer(kept, seconds=None, keep=True), Checkpointer(tmp_path / "b.ckpt", seconds=None)
    run(content, [style], config, extractor=tiny, checkpoint=keeping)
    run(content, [style], config, extractor=tiny, checkpoint=not_keeping)
    # neither holds the finished run's tensors (a web app keeps every job's Checkpointer)
    assert keeping._latest is None and not_keeping._latest is None
    saved = read_checkpoint(kept)
    assert saved["finished"] is True and saved["state"]["iteration"] == config.iterations
    assert torch.equal(saved["state"]["param"]["pixels"], every_step["param"]["pixels"])


def test_a_networks_starting_picture_is_named_by_the_options_not_fingerprinted(tmp_path, tiny):
    """--init model:NAME: the picture the run starts from may differ by device or machine (the options
    name it, and a resume does not start from it), so a resume given another picture goes on; an init
    image the options do not name (a file's pixels) stays part of the fingerprint."""
    content, style = _images()
    start, other = torch.rand(1, 3, 24, 32), torch.rand(1, 3, 24, 32)
    for init, resumes in (("model:starry_night", True), ("content", False)):
        config = GatysConfig(size=32, iterations=4, scales=1, precision="fp32", seed=0, style_weight=1e6, init=init)
        path = tmp_path / f"{init.replace(':', '_')}.ckpt"
        ckpt = Checkpointer(path, seconds=None)
        with pytest.raises(Interrupted):
            run(content, [style], config, extractor=tiny, checkpoint=ckpt, init_image=start, callback=StopAt(ckpt, 2))
        resume = lambda: run(content, [style], config, extractor=tiny, init_image=other,  # noqa: E731
                             checkpoint=Checkpointer(path, resume=True))
        if resumes:
            resume()
        else:
            with pytest.raises(PainterlyError, match="other input images or options"):
                resume()


def test_missing_or_corrupt_checkpoint(tmp_path, tiny):
    content, style = _images()
    config = GatysConfig(size=32, iterations=2, scales=1, precision="fp32", seed=0, style_weight=1e6)
    path = tmp_path / "a.ckpt"
    with pytest.raises(PainterlyError, match="no checkpoint"):
        run(content, [style], config, extractor=tiny, checkpoint=Checkpointer(path, resume=True))
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(PainterlyError, match="is not a readable painterly checkpoint"):
        run(content, [style], config, extractor=tiny, checkpoint=Checkpointer(path, resume=True))


def test_periodic_saves_are_atomic_and_counted(tmp_path, tiny):
    content, style = _images()
    config = GatysConfig(size=32, iterations=7, scales=1, precision="fp32", seed=0, style_weight=1e6)
    ckpt = Checkpointer(tmp_path / "a.ckpt", every=3, seconds=None, keep=True)
    run(content, [style], config, extractor=tiny, checkpoint=ckpt)
    assert ckpt.saved == 3  # after iterations 3 and 6, and the end state it keeps
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.ckpt"]  # no temporary files left


def test_a_failed_periodic_save_warns_once_and_the_run_goes_on(tmp_path, tiny, capsys):
    content, style = _images()
    config = GatysConfig(size=32, iterations=4, scales=1, precision="fp32", seed=0, style_weight=1e6)
    ckpt = Checkpointer(tmp_path / "missing" / "a.ckpt", every=1, seconds=None)
    out = run(content, [style], config, extractor=tiny, checkpoint=ckpt)
    assert out.shape == (1, 3, 24, 32)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("painterly: warning: could not save checkpoint"), err
    assert ckpt.save_failed and ckpt.saved == 0


def test_fingerprint_ignores_only_result_neutral_fields():
    a = torch.zeros(1, 3, 4, 4)
    base = fingerprint([a], {"size": 4, "max_time": None})
    assert fingerprint([a], {"size": 4, "max_time": 9}) == base
    assert fingerprint([a], {"size": 5, "max_time": None}) != base
    assert fingerprint([a + 1 / 255], {"size": 4, "max_time": None}) != base


# --- the CLI, killed for real ----------------------------------------------------------------------

CLI_ARGS = ["--size", "32", "--scales", "1", "--iterations", "60", "--seed", "0", "--precision", "fp32",
            "--quiet"]


@pytest.fixture(scope="module")
def cli_images(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    a = np.zeros((24, 32, 3), np.uint8)
    a[..., 0] = np.linspace(0, 255, 32, dtype=np.uint8)[None]
    a[..., 1] = np.linspace(0, 255, 24, dtype=np.uint8)[:, None]
    a[..., 2] = (np.arange(32)[None] // 4 % 2 * 200).astype(np.uint8)
    Image.fromarray(a).save(d / "content.png")
    Image.fromarray(255 - a[:, ::-1].copy()).save(d / "style.png")
    return d


def _cli(d: Path, out: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "painterly", str(d / "content.png"), str(d / "style.png"), "-o", str(d / out),
            *CLI_ARGS, *extra]


def _env():
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def cli_reference(cli_images):
    subprocess.run(_cli(cli_images, "ref.png"), env=_env(), check=True, capture_output=True)
    return np.asarray(Image.open(cli_images / "ref.png")).astype(int)


# The command line as `python -m painterly` runs it, except that the run holds still right after its
# first checkpoint is written, until a stop is requested (SIGINT, SIGTERM) or it is killed: where a
# signal lands in the run then does not depend on how fast the machine is (a fast one could
# otherwise finish before the signal arrives).
HELD_CLI = """
import os, sys, time
import painterly.checkpoint as checkpoint
from painterly.cli import main

held, save = os.environ["PAINTERLY_TEST_HELD"], checkpoint.Checkpointer.save

def save_then_hold(self, state):
    path = save(self, state)
    if not os.path.exists(held):
        open(held, "w").close()
        while self.stop_signal is None:  # set by the CLI's signal handler
            time.sleep(0.005)
    return path

checkpoint.Checkpointer.save = save_then_hold
sys.exit(main(sys.argv[1:]))
"""


def _start_and_hold_after_first_checkpoint(d: Path, out: str, *extra: str) -> subprocess.Popen:
    """Start the CLI; return once its first checkpoint is on disk and the run is held there."""
    held = d / f"{out}.held"
    cmd = [sys.executable, "-c", HELD_CLI, *_cli(d, out, *extra)[3:]]
    proc = subprocess.Popen(cmd, env={**_env(), "PAINTERLY_TEST_HELD": str(held)}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120  # only against a hang: the wait ends when the run gets there
    while not held.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no checkpoint within 120 s"
        time.sleep(0.005)
    return proc


def test_cli_survives_sigkill_and_resumes_to_the_same_image(cli_images, cli_reference):
    d = cli_images
    ckpt = d / "killed.ckpt"
    proc = _start_and_hold_after_first_checkpoint(d, "killed.png", "--checkpoint-every", "5")
    proc.kill()  # mid-run: 5 of 60 iterations saved, none of the output written
    proc.communicate()
    assert not (d / "killed.png").exists() and ckpt.exists()
    done = subprocess.run(_cli(d, "killed.png", "--checkpoint-every", "5", "--resume"), env=_env(),
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert not ckpt.exists()
    assert np.abs(np.asarray(Image.open(d / "killed.png")).astype(int) - cli_reference).max() <= 1


def test_cli_sigint_saves_checkpoint_and_image_then_resumes(cli_images, cli_reference):
    d = cli_images
    proc = _start_and_hold_after_first_checkpoint(d, "int.png", "--checkpoint-every", "5")
    proc.send_signal(signal.SIGINT)  # while held after iteration 5: the stop is honoured after iteration 6
    _, err = proc.communicate()
    assert proc.returncode == 130, err
    line = err.strip().splitlines()[-1]
    assert line.startswith("painterly: interrupted at scale 1/1 iteration 6/60; "), err
    assert "--resume" in line and "Traceback" not in err
    assert (d / "int.png").exists()  # the image so far
    done = subprocess.run(_cli(d, "int.png", "--checkpoint-every", "5", "--resume"), env=_env(),
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert np.abs(np.asarray(Image.open(d / "int.png")).astype(int) - cli_reference).max() <= 1


def test_cli_sigterm_in_process(cli_images, capsys, monkeypatch):
    """SIGTERM (sent to this process from the progress callback) stops at the iteration boundary."""
    d = cli_images
    real = cli.stylize

    def terminate_at_step_2(content, styles, *, config, callback, **kwargs):
        def cb(info):
            if callback is not None:
                callback(info)
            if info.step == 2:
                os.kill(os.getpid(), signal.SIGTERM)
        return real(content, styles, config=config, callback=cb, **kwargs)

    monkeypatch.setattr(cli, "stylize", terminate_at_step_2)
    argv = [str(d / "content.png"), str(d / "style.png"), "-o", str(d / "term.png"), "--size", "32", "--scales", "1",
            "--iterations", "4", "--seed", "0", "--log"]  # with the progress bar and the loss log
    previous = signal.getsignal(signal.SIGTERM)
    assert cli.main(argv) == 130
    assert signal.getsignal(signal.SIGTERM) is previous  # handlers restored
    err = capsys.readouterr().err.strip().splitlines()
    assert "Traceback" not in "".join(err) and "error" not in "".join(err)
    assert any("stopping after this iteration" in line for line in err)
    assert err[-1].startswith("painterly: interrupted at scale 1/1 iteration 2/4; wrote the image so far to ")
    assert err[-1].endswith("resume with: painterly " + " ".join(argv) + " --resume")
    assert (d / "term.png").exists() and (d / "term.ckpt").exists()
    assert len(json.loads((d / "term.json").read_text())) == 2  # the loss log so far, beside the image so far
    monkeypatch.setattr(cli, "stylize", real)
    assert cli.main(argv + ["--resume"]) == 0
    assert not (d / "term.ckpt").exists()
    log = json.loads((d / "term.json").read_text())
    assert [r["step"] for r in log] == [1, 2, 3, 4]  # the steps before the stop came back from the checkpoint


def test_cli_refuses_a_mismatched_checkpoint(cli_images, capsys):
    d = cli_images
    ckpt = Checkpointer(d / "mm.ckpt", seconds=None)
    ckpt.start("0" * 64)
    ckpt.save({})
    code = cli.main([str(d / "content.png"), str(d / "style.png"), "-o", str(d / "mm.png"), *CLI_ARGS,
                     "--resume"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip().splitlines() == [
        f"painterly: error: checkpoint '{d / 'mm.ckpt'}' was made with other input images or options; "
        "resume with exactly the same ones, or delete it to start afresh"]


def test_a_resumed_size_max_run_keeps_the_size_it_chose(tmp_path, monkeypatch):
    """size="max" is worked out from the memory free when the run starts; a resume with more memory free
    goes on at the size the run chose (it was refused as made with other options)."""
    from painterly import hardware

    content, style = _images()
    options = dict(size="max", iterations=4, scales=1, precision="fp32", seed=0, style_weight=1e6)
    path = tmp_path / "max.ckpt"
    monkeypatch.setattr(hardware, "available_memory_bytes", lambda: int(0.9 * 2**30))
    chosen = painterly.largest_size(content, **{k: v for k, v in options.items() if k != "size"})
    ckpt = Checkpointer(path, seconds=None)
    with pytest.raises(Interrupted):
        painterly.stylize(content, style, checkpoint=ckpt, callback=StopAt(ckpt, 2), **options)
    monkeypatch.setattr(hardware, "available_memory_bytes", lambda: int(1.5 * 2**30))
    assert painterly.largest_size(content, **{k: v for k, v in options.items() if k != "size"}) > chosen
    resumed = painterly.stylize(content, style, checkpoint=path, resume=True, **options)
    assert max(resumed.size) == chosen
