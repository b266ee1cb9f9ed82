"""`painterly video` mistakes an exploratory session found: a re-run without --resume deleting finished
frames, `--size max`, flags a method would ignore, a frame folder's output left half-written on an
error, frames of two sizes, and what the messages, the progress bar and the summary line say. Tiny
synthetic clips and frame folders, the trained network where the method does not matter: seconds each."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

av = pytest.importorskip("av")
pytest.importorskip("cv2")

import painterly  # noqa: E402
import painterly.video as video_module  # noqa: E402
from painterly.cli import main  # noqa: E402
from painterly.video import FrameInfo, VideoConfig, stylize_video  # noqa: E402
from painterly.videoio import VideoSource  # noqa: E402

from helpers import write_clip  # noqa: E402

STYLE = Path(painterly.__file__).parent / "examples" / "starry_night.jpg"
NET = {"model": "starry_night", "precision": "fp32"}


def picture(i: int, w: int = 80, h: int = 60) -> np.ndarray:
    """A smooth pattern moving a little with i."""
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([(x * 3 + i * 4) % 256, (y * 4 + i * 2) % 256, (x + y + i * 3) % 256], -1).astype(np.uint8)


def make_clip(path: Path, count: int = 3, w: int = 80, h: int = 60, rate: int = 25) -> Path:
    frames = [torch.from_numpy(picture(i, w, h)).permute(2, 0, 1)[None].float() / 255 for i in range(count)]
    return write_clip(path, frames, rate=rate, audio=False)


def make_folder(path: Path, count: int = 4, w: int = 80, h: int = 60) -> Path:
    path.mkdir()
    for i in range(count):
        Image.fromarray(picture(i, w, h)).save(path / f"a_{i + 1:03d}.png")
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("clip") / "clip.mp4")


def last_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("painterly: error: "), err
    return err[-1][len("painterly: error: "):]


def stop_at(frame: int, exc=KeyboardInterrupt):
    def callback(info: FrameInfo) -> None:
        if info.frame == frame:
            raise exc("stopped") if exc is not KeyboardInterrupt else exc
    return callback


# --- 1. a re-run without --resume keeps this run's finished frames ------------------------------------

def test_a_rerun_without_resume_refuses_to_delete_this_runs_finished_frames(clip, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    words = ["video", str(clip), "-o", "lose.mp4", "--model", "starry_night", "--precision", "fp32", "--size", "32"]
    with pytest.raises(KeyboardInterrupt):
        stylize_video(clip, None, "lose.mp4", size=32, callback=stop_at(2), **NET)
    folder = tmp_path / "lose.mp4.frames"
    kept = sorted(p.name for p in folder.iterdir())
    assert kept == ["frame_00001.png", "frame_00002.png", "plan.json"]
    before = (folder / "frame_00001.png").read_bytes()
    assert main(words) == 2
    assert last_error(capsys) == ("'lose.mp4.frames' holds 2 finished frames of this run: add --resume to continue "
                                  "it, or delete the folder to start afresh")
    with pytest.raises(painterly.PainterlyError, match="holds 2 finished frames of this run"):  # the API too
        stylize_video(clip, None, "lose.mp4", size=32, **NET)
    assert sorted(p.name for p in folder.iterdir()) == kept and (folder / "frame_00001.png").read_bytes() == before
    # another run's folder (other options) is replaced, as before
    assert main([*words[:-1], "40", "--quiet"]) == 0
    assert not folder.exists() and VideoSource("lose.mp4").info.size == (30, 40)


def test_a_resume_still_continues(clip, tmp_path):
    out = tmp_path / "frames_out"
    with pytest.raises(KeyboardInterrupt):
        stylize_video(clip, None, out, size=32, callback=stop_at(1), **NET)
    seen = []
    result = stylize_video(clip, None, out, size=32, resume=True, callback=lambda i: seen.append(i.resumed), **NET)
    assert seen == [True, False, False] and result.frames == 3
    assert sorted(p.name for p in out.iterdir()) == [f"frame_0000{i}.png" for i in (1, 2, 3)]


# --- 2. --size max ---------------------------------------------------------------------------------------

def test_size_max_takes_the_largest_that_fits_never_more_than_the_frames(clip, tmp_path, capsys):
    out = tmp_path / "max.mp4"
    assert main(["video", str(clip), "-o", str(out), "--model", "starry_night", "--size", "max"]) == 0
    err = capsys.readouterr().err
    assert "painterly: --size max: 80 px fits in free memory (80x60 frames)" in err
    assert "wrote" in err and VideoSource(out).info.size == (60, 80)


def test_size_max_is_kept_for_a_resume_and_for_the_rerun_refusal(clip, tmp_path, monkeypatch):
    """Free memory changes between runs: the size --size max chose is the run's, kept in its plan."""
    monkeypatch.setattr(video_module, "largest_size", lambda *a, **k: 40)
    out = tmp_path / "max"
    with pytest.raises(KeyboardInterrupt):
        stylize_video(clip, None, out, size="max", callback=stop_at(1), **NET)
    monkeypatch.setattr(video_module, "largest_size", lambda *a, **k: 48)  # more memory free now
    with pytest.raises(painterly.PainterlyError, match="holds 1 finished frame of this run: add --resume"):
        stylize_video(clip, None, out, size="max", **NET)
    sizes = []
    result = stylize_video(clip, None, out, size="max", resume=True, callback=lambda i: sizes.append(i.size), **NET)
    assert result.size == (40, 30) and sizes == [(40, 30)] * 3
    assert Image.open(out / "frame_00003.png").size == (40, 30)


# --- 3. flags a method would ignore ----------------------------------------------------------------------

@pytest.mark.parametrize("flags, message", [
    (["--model", "starry_night", "--later-iterations", "3", "--long-term", "2"],
     ("--later-iterations, --long-term: network is one forward pass a frame, blended with the previous frame along "
      "the flow; these belong to the methods that optimise each frame from the last")),
    (["--method", "adain", "--long-term", "1"], "--long-term: adain is one forward pass a frame, blended with the "
     "previous frame along the flow; it belongs to the methods"),
    (["--method", "wct", "--later-iterations", "2"], "--later-iterations: wct is one forward pass a frame"),
    (["--iterations", "2", "--temporal-weight", "0", "--later-iterations", "1"],
     "--later-iterations: --temporal-weight 0 paints every frame afresh, as the first"),
    (["--model", "starry_night", "--crf", "10", "--lossless"], "--lossless keeps every pixel; it takes no --crf"),
    (["--model", "starry_night", "--lossless", "-o", "FOLDER"],
     ("--lossless: 'FOLDER' is a folder of PNG frames, which keep every pixel; --crf and --lossless are for a "
      "video file output")),
])
def test_flags_the_run_would_ignore_are_refused_in_one_line_before_any_work(clip, tmp_path, capsys, monkeypatch,
                                                                            flags, message):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(video_module, "_paint_all", lambda *a, **k: (_ for _ in ()).throw(AssertionError("painted")))
    styles = [] if "--model" in flags else [str(STYLE)]
    output = [] if "-o" in flags else ["-o", "out.mp4"]
    assert main(["video", str(clip), *styles, *output, "--size", "32", *flags]) == 2
    assert last_error(capsys).startswith(message)
    assert list(tmp_path.iterdir()) == []


def test_the_api_refuses_them_too(clip, tmp_path):
    with pytest.raises(painterly.PainterlyError, match="network is one forward pass a frame"):
        stylize_video(clip, None, tmp_path / "o.mp4", video=VideoConfig(later_iterations=2), **NET)
    with pytest.raises(painterly.PainterlyError, match="it takes no --crf"):
        VideoConfig(crf=18, lossless=True)
    assert VideoConfig(lossless=True).crf is None and VideoConfig(crf=51).crf == 51
    # given beside the painting options, a video option is pointed to VideoConfig (it was "unknown option
    # later_iterations (did you mean scale_iterations?)")
    with pytest.raises(painterly.PainterlyError,
                       match=r"^later_iterations is a video option: give it as video=painterly.VideoConfig\("):
        stylize_video(clip, [str(STYLE)], tmp_path / "o.mp4", later_iterations=2)


# --- 4. a frame folder's output after an error; frames of two sizes ---------------------------------------

def test_an_error_mid_run_removes_what_this_run_wrote_to_a_frame_folder(clip, tmp_path):
    made = tmp_path / "made"  # a folder this run creates: removed whole
    with pytest.raises(painterly.PainterlyError, match="stopped"):
        stylize_video(clip, None, made, size=32, callback=stop_at(2, painterly.PainterlyError), **NET)
    assert not made.exists()
    there = tmp_path / "there"  # a folder that was there: this run's frames and plan go, the rest stays
    there.mkdir()
    (there / "notes.txt").write_text("mine")
    with pytest.raises(painterly.PainterlyError, match="stopped"):
        stylize_video(clip, None, there, size=32, callback=stop_at(2, painterly.PainterlyError), **NET)
    assert [p.name for p in there.iterdir()] == ["notes.txt"]
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C keeps the frames, for --resume
        stylize_video(clip, None, made, size=32, callback=stop_at(2), **NET)
    assert sorted(p.name for p in made.iterdir()) == ["frame_00001.png", "frame_00002.png", "plan.json"]


@pytest.mark.parametrize("case", ["portrait", "corrupt"])
def test_a_bad_frame_in_a_folder_is_refused_before_any_work(tmp_path, capsys, case):
    frames = make_folder(tmp_path / "frames")
    if case == "portrait":  # a 60x80 frame among 80x60 ones
        Image.fromarray(picture(9, 60, 80)).save(frames / "a_003.png")
        message = (f"frame '{frames / 'a_003.png'}' is 60x80 px but the first, 'a_001.png', is 80x60 px; the frames "
                   "of one video have one size")
    else:
        (frames / "a_003.png").write_bytes(b"not a png")
        message = f"frame '{frames / 'a_003.png'}' is not an image painterly can read"
    out = tmp_path / "out"
    assert main(["video", str(frames), "-o", str(out), "--model", "starry_night", "--size", "32"]) == 2
    assert last_error(capsys) == message
    assert not out.exists()


# --- 5. messages, the bar, the summary, --fps --------------------------------------------------------------

def test_options_of_two_methods_are_refused_as_the_image_command_does(clip, tmp_path, capsys):
    assert main(["video", str(clip), "-o", str(tmp_path / "x.mp4"), "--model", "starry_night", "--seed", "3"]) == 2
    assert last_error(capsys).startswith("the options do not pick one method: --seed (gatys, strotss), "
                                         "--model (network); give --method and options it takes")


def test_frames_too_small_are_named_as_the_videos(tmp_path, capsys):
    tiny = make_clip(tmp_path / "tiny.mp4", w=8, h=6)
    assert main(["video", str(tiny), "-o", str(tmp_path / "t.mp4"), "--model", "starry_night", "--size", "64"]) == 2
    assert last_error(capsys) == ("the frames are 8x6 px; each side must be at least 16 px (a video's frames are "
                                  "not enlarged)")
    wide = make_clip(tmp_path / "wide.mp4", w=80, h=60)
    assert main(["video", str(wide), "-o", str(tmp_path / "t.mp4"), "--model", "starry_night", "--size", "20"]) == 2
    assert last_error(capsys) == ("the frames would be 20x15 px at --size 20 (the video's are 80x60); each side must "
                                  "be at least 16 px: raise --size")


def test_the_summary_and_the_result_give_the_size_written_width_first(tmp_path, capsys):
    clip = make_clip(tmp_path / "pad.mp4", w=90, h=52)
    out = tmp_path / "pad_out.mp4"
    assert main(["video", str(clip), "-o", str(out), "--model", "starry_night", "--size", "45"]) == 0
    err = capsys.readouterr().err
    assert "padded 45x26 to 46x26" in err and f"wrote {out} (3 frames, 46x26, 25 fps)" in err
    assert VideoSource(out).info.size == (26, 46)
    result = stylize_video(clip, None, tmp_path / "pad_frames", size=45, **NET)
    assert result.size == (45, 26) and Image.open(tmp_path / "pad_frames" / "frame_00001.png").size == (45, 26)


def test_the_bar_shows_no_rate_before_it_means_something(capsys):
    from painterly.cli_video import _FrameBar

    bar = _FrameBar(quiet=False)
    for frame, seconds, resumed in [(1, 0.0, True), (2, 0.0, True), (3, 4.0, False), (4, 2.0, False)]:
        bar(FrameInfo(frame, 6, seconds, 0.001 * frame, {}, resumed, (64, 48)))
        shown = capsys.readouterr().err.split("\r")[-1]
        assert "frame/s" not in shown and "?" not in shown, shown
        if frame < 3:
            assert "resumed" in shown and "left" not in shown
        else:
            assert f"{seconds:.1f} s/frame" in shown
    assert "00:06 left" in shown  # two frames to go at the painted frames' 3 s mean
    bar.close()


def test_fps_sets_a_folders_rate_and_is_refused_for_a_video_file(clip, tmp_path, capsys):
    frames = make_folder(tmp_path / "frames", count=8)
    source = VideoSource(frames, end=0.5, fps=10)
    assert source.info.frames == 5 and source.info.rate == Fraction(10)
    assert VideoSource(frames).info.rate == Fraction(25)  # the default
    result = stylize_video(frames, None, tmp_path / "out.mp4", size=32, video=VideoConfig(fps=12, every=2), **NET)
    assert result.rate == Fraction(6) and VideoSource(tmp_path / "out.mp4").info.rate == Fraction(6)
    assert main(["video", str(clip), "-o", str(tmp_path / "x.mp4"), "--model", "starry_night", "--fps", "10"]) == 2
    assert last_error(capsys) == f"--fps sets the rate of a folder of frames; the video '{clip}' has its own (25 fps)"
    assert main(["video", str(frames), "-o", str(tmp_path / "y.mp4"), "--model", "starry_night", "--fps", "0"]) == 2
    assert "fps must be positive" in last_error(capsys)
    with pytest.raises(painterly.PainterlyError, match="--fps must be at least 1/1001, got 0.0004"):
        VideoSource(frames, fps=0.0004)  # kept as a fraction of denominator 1001 or less: 0, and written as 24


@pytest.mark.parametrize("signum", ["SIGINT", "SIGTERM"])
def test_a_video_stops_on_a_signal_even_where_the_shell_ignored_sigint(clip, tmp_path, capsys, monkeypatch, signum):
    """`painterly video ... &` from a script starts with SIGINT ignored, and Python left it so: kill -INT
    did nothing and the video ran to its end. The command now takes SIGINT and SIGTERM as Ctrl-C (the
    finished frames kept, the resume command printed) and gives back the handlers it found."""
    import os
    import signal
    import time

    import painterly.cli_video as cli_video

    def painting(*args, **kwargs):
        os.kill(os.getpid(), getattr(signal, signum))
        time.sleep(30)  # a signal taken as Ctrl-C ends this at once

    monkeypatch.setattr(cli_video, "stylize_video", painting)
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        start = time.monotonic()
        code = main(["video", str(clip), str(STYLE), "-o", str(tmp_path / "o.mp4"), "--size", "32"])
        assert code == 130 and time.monotonic() - start < 20
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN  # as it found it
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)
    assert "interrupted; no frame was finished yet; resume with:" in capsys.readouterr().err


def test_an_interrupted_video_names_the_folder_its_frames_are_kept_in(clip, tmp_path, capsys, monkeypatch):
    import painterly.cli_video as cli_video

    def painting(*args, callback, **kwargs):  # the first frame done, then Ctrl-C
        callback(painterly.FrameInfo(frame=1, frames=3, seconds=0.1, elapsed=0.1, losses={}, resumed=False,
                                     size=(32, 18), painted=1))
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_video, "stylize_video", painting)
    assert main(["video", str(clip), str(STYLE), "-o", str(tmp_path / "o.mp4"), "--size", "32"]) == 130
    assert f"the 1 finished frame is kept in '{tmp_path / 'o.mp4.frames'}'" in capsys.readouterr().err


def test_stop_run_in_a_videos_step_callback_stops_it_as_ctrl_c_does(clip, tmp_path):
    """StopRun ended the frame's optimisation early and the frame was saved as finished (a resume kept it)
    while the video went on; it now stops the video as Ctrl-C does, the frame cut short not saved."""
    def stop_in_second_frame(info):
        if info.frame == 1 and info.iteration == 1:
            raise painterly.StopRun

    out = tmp_path / "o.mp4"
    with pytest.raises(KeyboardInterrupt):
        stylize_video(clip, [str(STYLE)], out, size=32, iterations=2, scales=1, seed=0, precision="fp32",
                      step_callback=stop_in_second_frame)
    frames = sorted(p.name for p in video_module.work_folder(out).glob("frame_*.png"))
    assert frames == ["frame_00001.png"] and not out.exists()
