"""Video: flow against known motion, warping, reliability masks, the temporal loss, an end-to-end clip
through encode/decode with its audio, resume equality, bad inputs, and temporal consistency beating
independent frames. The clips are made here: a photo panned over a few frames, so the motion is known."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

av = pytest.importorskip("av")
pytest.importorskip("cv2")

import painterly  # noqa: E402
from painterly.flow import flow, reliability, warp  # noqa: E402
from painterly.image import as_tensor, resize  # noqa: E402
from painterly.video import VideoConfig, _long_term_masks, stylize_video, temporal_term  # noqa: E402
from painterly.videoio import VideoSink, VideoSource  # noqa: E402
from painterly.recipe import Place  # noqa: E402

from helpers import write_clip  # noqa: E402

EXAMPLES = Path(painterly.__file__).parent / "examples"
FAST = {"size": 64, "iterations": 4, "scales": 1, "seed": 0, "precision": "fp32"}


def panned_frames(count=5, step=(2, 1), size=(36, 64)) -> list[torch.Tensor]:
    """Frames of the example photo seen through a window moving `step` (dx, dy) pixels per frame."""
    photo = resize(as_tensor(EXAMPLES / "tubingen.jpg"), (120, 160))
    h, w = size
    return [photo[..., 10 + i * step[1]:10 + i * step[1] + h, 10 + i * step[0]:10 + i * step[0] + w].contiguous()
            for i in range(count)]


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return write_clip(tmp_path_factory.mktemp("clip") / "pan.mp4", panned_frames(6))


def test_dis_flow_finds_the_known_pan():
    a, b = panned_frames(2, step=(3, 2))
    offsets = flow(a, b)  # b's pixel (x, y) came from a at (x + 3, y + 2)
    inner = offsets[..., 6:-6, 6:-6]
    assert abs(float(inner[0, 0].mean()) - 3) < 0.15 and abs(float(inner[0, 1].mean()) - 2) < 0.15
    assert float((inner[0, 0] - 3).abs().median()) < 0.2


def test_warp_with_the_true_flow_reproduces_the_next_frame():
    a, b = panned_frames(2, step=(3, 2))
    known = torch.tensor([3.0, 2.0]).view(1, 2, 1, 1).expand(1, 2, *a.shape[-2:])
    aligned = warp(a, known)
    assert float((aligned - b)[..., :-3, :-4].abs().max()) < 1e-5  # integer shifts: exact where inside
    assert float((a - b).abs().mean()) > 0.005  # and without warping they differ


def test_masks_mark_a_disocclusion_and_the_frame_border_unreliable():
    background = resize(as_tensor(EXAMPLES / "tubingen.jpg"), (64, 96))
    first, second = background.clone(), background.clone()
    first[..., 20:40, 20:40] = torch.tensor([1.0, 0.1, 0.1]).view(1, 3, 1, 1)   # a red square...
    second[..., 20:40, 30:50] = torch.tensor([1.0, 0.1, 0.1]).view(1, 3, 1, 1)  # ...moved 10 px right
    forward, backward = flow(first, second), flow(second, first)
    mask = reliability(forward, backward)[0, 0]
    uncovered = mask[22:38, 22:28]          # background the square left: not in the first frame
    still = mask[45:60, 60:90]             # background nobody touched
    assert float(uncovered.mean()) < 0.5 < float(still.mean())
    shifted = torch.tensor([4.0, 0.0]).view(1, 2, 1, 1).expand(1, 2, 16, 16)
    border = reliability(shifted, -shifted)[0, 0]
    assert float(border[:, -4:].max()) == 0 and float(border[:, :8].min()) == 1


def test_temporal_term_value_and_gradient_by_hand():
    torch.manual_seed(0)
    image = torch.rand(1, 3, 4, 5, requires_grad=True)
    warped, mask = torch.rand(1, 3, 4, 5), (torch.rand(1, 1, 4, 5) > 0.5).float()
    term = temporal_term([(warped, mask)], weight=2.0)(image, Place(0, (4, 5)))
    expected = 2.0 * (mask * (255 * (image - warped)) ** 2).sum() / image.numel()
    assert torch.allclose(term, expected)
    term.backward()
    by_hand = 2.0 * 2 * mask * (image - warped).detach() * 255 ** 2 / image.numel()
    assert torch.allclose(image.grad, by_hand, rtol=1e-5, atol=1e-3)  # fp32 rounding near zero


def test_long_term_masks_keep_each_pixel_on_the_nearest_reliable_frame():
    near = torch.tensor([[1.0, 0.0, 0.0, 1.0]])
    mid = torch.tensor([[1.0, 1.0, 0.0, 0.0]])
    far = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    out = _long_term_masks([near, mid, far])
    assert out[0].tolist() == [[1, 0, 0, 1]] and out[1].tolist() == [[0, 1, 0, 0]] and out[2].tolist() == [[0, 0, 1, 0]]


def test_a_clip_round_trips_with_frame_count_rate_and_audio(clip, tmp_path):
    source = VideoSource(clip)
    assert source.info.frames == 6 and source.info.rate == Fraction(10) and source.info.has_audio
    out = tmp_path / "styled.mp4"
    result = stylize_video(clip, EXAMPLES / "starry_night.jpg", out, video=VideoConfig(later_iterations=2), **FAST)
    assert result.frames == 6 and result.size == (64, 36)  # (width, height), as PIL
    back = av.open(str(out))
    assert back.streams.video[0].average_rate == 10 and back.streams.audio
    decoded = [f.to_ndarray(format="rgb24") for f in back.decode(video=0)]
    back.close()
    assert len(decoded) == 6 and decoded[0].shape == (36, 64, 3)
    assert not (tmp_path / "styled.mp4.frames").exists() and not list(tmp_path.glob(".*part*"))
    every = stylize_video(clip, EXAMPLES / "starry_night.jpg", tmp_path / "half.mp4",
                          video=VideoConfig(every=2, start=0.1), **FAST)
    assert every.frames == 3 and every.rate == Fraction(5)  # frames 1, 3, 5 at half the rate


def test_an_odd_size_is_padded_and_said(tmp_path):
    frames = [torch.rand(1, 3, 15, 21) for _ in range(2)]
    sink = VideoSink(tmp_path / "odd.mp4", (15, 21), Fraction(5))
    for f in frames:
        sink.write(f)
    sink.close()
    assert "padded 21x15 to 22x16" in sink.note
    assert VideoSource(tmp_path / "odd.mp4").info.size == (16, 22)


def test_resume_gives_the_uninterrupted_video(clip, tmp_path, monkeypatch):
    """Also where the resuming process would choose another precision for auto (a busy machine times
    bf16 otherwise): the work folder keeps the first process's choice."""
    from painterly import hardware

    style = EXAMPLES / "starry_night.jpg"
    auto = {**FAST, "precision": "auto"}
    monkeypatch.setattr(hardware, "bf16_pays", lambda device="cpu": False)
    whole = tmp_path / "whole"
    stylize_video(clip, style, whole, **auto)

    def stop_after_three(info):
        if info.frame == 3:
            raise KeyboardInterrupt

    part = tmp_path / "part"
    with pytest.raises(KeyboardInterrupt):
        stylize_video(clip, style, part, callback=stop_after_three, **auto)
    assert len(list(part.glob("frame_*.png"))) == 3
    with pytest.raises(painterly.PainterlyError, match=r"other inputs or options \(iterations 4 then, 5 now\)"):
        stylize_video(clip, style, part, resume=True, **{**auto, "iterations": 5})
    monkeypatch.setattr(hardware, "bf16_pays", lambda device="cpu": True)
    seen = []
    stylize_video(clip, style, part, resume=True, callback=seen.append, **auto)
    assert [i.resumed for i in seen] == [True] * 3 + [False] * 3
    # the time left counts the frames this process painted, not those it loaded in no time
    assert [i.painted for i in seen] == [0, 0, 0, 1, 2, 3]
    assert all(math.isnan(i.eta) for i in seen[:3])
    assert seen[3].eta == pytest.approx(seen[3].elapsed * 2) and seen[5].eta == 0
    for a, b in zip(sorted(whole.glob("frame_*.png")), sorted(part.glob("frame_*.png"))):
        assert np.array_equal(np.asarray(painterly.open_image(a)), np.asarray(painterly.open_image(b))), a.name


def test_temporal_consistency_beats_independent_frames(clip, tmp_path):
    style = EXAMPLES / "starry_night.jpg"
    frames = list(VideoSource(clip))
    errors = {}
    for weight in (0.0, 200.0):
        out = tmp_path / f"w{weight:g}"
        stylize_video(clip, style, out, video=VideoConfig(temporal_weight=weight), **{**FAST, "iterations": 6})
        outputs = [as_tensor(p) for p in sorted(out.glob("frame_*.png"))]
        errors[weight] = painterly.warping_error(frames, outputs)
    assert errors[200.0] < 0.5 * errors[0.0], errors


def test_a_network_blends_along_the_flow(clip, tmp_path):
    frames = list(VideoSource(clip))
    errors = {}
    for weight in (0.0, 200.0):
        out = tmp_path / f"n{weight:g}"
        stylize_video(clip, [], out, model="starry_night", size=64, video=VideoConfig(temporal_weight=weight))
        errors[weight] = painterly.warping_error(frames, [as_tensor(p) for p in sorted(out.glob("frame_*.png"))])
    assert errors[200.0] < errors[0.0], errors


def test_init_model_starts_each_fresh_frame_from_the_networks_picture(clip, tmp_path):
    """--init model:NAME on a video: with no temporal term every frame starts afresh, from the network's
    picture of that frame, so 0 iterations write the network's frames."""
    video = VideoConfig(temporal_weight=0)
    stylize_video(clip, EXAMPLES / "starry_night.jpg", tmp_path / "g", video=video, init="model:starry_night",
                  **{**FAST, "iterations": 0})
    stylize_video(clip, [], tmp_path / "n", model="starry_night", size=64, precision="fp32", video=video)
    started, network = (sorted((tmp_path / d).glob("frame_*.png")) for d in ("g", "n"))
    assert len(started) == len(network) == 6
    for a, b in zip(started, network):
        assert (as_tensor(a) - as_tensor(b)).abs().max() <= 1 / 255 + 1e-6


@pytest.mark.parametrize("case, words", [
    ("missing", "does not exist"),
    ("not_a_video", "not a video"),
    ("image", "is an image, not a video"),
    ("truncated", "truncated or corrupt|no frames|not a video"),
    ("empty_range", "no frames"),
    ("bad_range", "do not make a time range"),
])
def test_bad_input_is_one_line_and_leaves_nothing(clip, tmp_path, case, words):
    source, video = tmp_path / "in.mp4", VideoConfig()
    if case == "not_a_video":
        source.write_text("this is a text file\n")
    elif case == "image":
        source = EXAMPLES / "tubingen.jpg"
    elif case == "truncated":
        data = clip.read_bytes()
        source.write_bytes(data[: len(data) // 3])
    elif case == "empty_range":
        source, video = clip, VideoConfig(start=30.0)
    elif case == "bad_range":
        source, video = clip, VideoConfig(start=0.4, end=0.2)
    out = tmp_path / "out" / "styled.mp4"
    out.parent.mkdir()
    with pytest.raises(painterly.PainterlyError, match=words) as error:
        stylize_video(source, EXAMPLES / "starry_night.jpg", out, video=video, **FAST)
    assert "\n" not in str(error.value)
    assert list(out.parent.iterdir()) == []


def test_a_refused_session_leaves_nothing(clip, tmp_path):
    """Inputs the session refuses (a network given a style image) are found after the work folder is
    made; it goes again."""
    out = tmp_path / "out" / "styled.mp4"
    out.parent.mkdir()
    with pytest.raises(painterly.PainterlyError, match="takes no style images"):
        stylize_video(clip, EXAMPLES / "starry_night.jpg", out, method="network", model="starry_night")
    assert list(out.parent.iterdir()) == []


def test_the_video_command_writes_the_clip_and_refuses_bad_input_in_one_line(clip, tmp_path, capsys):
    from painterly.cli import main

    out = tmp_path / "cli.mp4"
    code = main(["video", str(clip), str(EXAMPLES / "starry_night.jpg"), "-o", str(out), "--size", "48",
                 "--iterations", "3", "--scales", "1", "--every", "3", "--quiet"])
    assert code == 0 and VideoSource(out).info.frames == 2
    assert main(["video", str(tmp_path / "nope.mp4"), str(EXAMPLES / "starry_night.jpg"), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("painterly: error:") and "does not exist" in err[-1]
    assert main(["video", str(clip), str(EXAMPLES / "starry_night.jpg"), "-o", str(out), "--crf", "60"]) == 2
    capsys.readouterr()
    # a flag the method does not take: the same one line as the image command's
    assert main(["video", str(clip), str(EXAMPLES / "starry_night.jpg"), "-o", str(out), "--method", "adain",
                 "--max-time", "5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--max-time does not apply to --method adain" in err[0]


def test_lossless_output_keeps_every_pixel(tmp_path):
    frames = [(torch.rand(1, 3, 16, 24) * 255).round() / 255 for _ in range(3)]
    sink = VideoSink(tmp_path / "exact.mkv", (16, 24), Fraction(5), lossless=True)
    for f in frames:
        sink.write(f)
    sink.close()
    back = list(VideoSource(tmp_path / "exact.mkv"))
    assert len(back) == 3 and all(torch.equal((a * 255).round(), (b * 255).round()) for a, b in zip(frames, back))


def test_long_term_consistency_adds_the_earlier_frames_terms(clip, tmp_path):
    terms = {}
    for long_term in (0, 2):
        seen = []
        stylize_video(clip, EXAMPLES / "starry_night.jpg", tmp_path / f"long{long_term}",
                      video=VideoConfig(long_term=long_term), callback=lambda info: seen.append(info.losses),
                      **{**FAST, "iterations": 2})
        assert "temporal" not in seen[0] and all("temporal" in losses for losses in seen[1:])
        terms[long_term] = [losses["temporal"] for losses in seen[1:]]
    # frame 2 sees only frame 1 either way; from frame 3 on, frames 2 and 4 back add their terms
    assert terms[2][0] == pytest.approx(terms[0][0], rel=1e-4)
    assert all(b != pytest.approx(a, rel=1e-3) for a, b in zip(terms[0][1:], terms[2][1:]))


def _patched(path: Path, out: Path, old: bytes, new: bytes, after: bytes) -> Path:
    """`path` with the first `old` after the box `after` replaced: an MP4 edited the way other muxers write it."""
    data = bytearray(path.read_bytes())
    at = data.find(old, data.find(after))
    data[at:at + len(new)] = new
    out.write_bytes(bytes(data))
    return out


def test_a_phone_rotation_is_turned_upright(tmp_path):
    """A portrait phone clip is stored landscape with a display matrix; frames must come out as shown."""
    import struct

    frame = torch.zeros(1, 3, 16, 32)
    frame[..., :8] = 1.0  # a white band on the stored frame's left
    stored = write_clip(tmp_path / "stored.mp4", [frame] * 3, audio=False)
    identity = struct.pack(">9i", 65536, 0, 0, 0, 65536, 0, 0, 0, 1 << 30)
    clockwise = struct.pack(">9i", 0, 65536, 0, -65536, 0, 0, 0, 0, 1 << 30)  # QuickTime's 90° clockwise
    rotated = _patched(stored, tmp_path / "portrait.mp4", identity, clockwise, b"tkhd")
    source = VideoSource(rotated)
    assert source.info.rotation == 270 and source.info.size == (32, 16)
    upright = next(iter(source))
    assert upright.shape[-2:] == (32, 16)
    assert float(upright[..., :6, :].mean()) > 0.9 and float(upright[..., 10:, :].mean()) < 0.1  # left became top


def test_an_undecodable_codec_is_one_line(clip, tmp_path):
    unknown = _patched(clip, tmp_path / "unknown.mp4", b"avc1", b"zzzz", b"stsd")
    with pytest.raises(painterly.PainterlyError, match="codec cannot be decoded here") as error:
        stylize_video(unknown, EXAMPLES / "starry_night.jpg", tmp_path / "out.mp4", **FAST)
    assert "\n" not in str(error.value) and not (tmp_path / "out.mp4").exists()


def test_a_frame_too_large_for_memory_is_one_line_and_leaves_nothing(clip, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(painterly.PainterlyError, match=r"no size fits in the 0.01 GiB available.*--max-memory [0-9.]+ or more") as error:
        stylize_video(clip, EXAMPLES / "starry_night.jpg", out / "styled.mp4", max_memory=0.01, **FAST)
    assert "\n" not in str(error.value) and list(out.iterdir()) == []


def test_an_output_that_is_the_input_or_not_a_video_is_refused_before_any_frame(clip, tmp_path, monkeypatch):
    """OUT naming the clip itself would replace it; OUT with an image's or an unknown extension is neither a
    video nor a frame folder: both refused in one line before a frame is painted, the clip untouched."""
    import shutil

    import painterly.video as video_module

    own = tmp_path / "own.mp4"
    shutil.copy(clip, own)
    before = own.read_bytes()
    monkeypatch.setattr(video_module, "_paint_all", lambda *a, **k: (_ for _ in ()).throw(AssertionError("painted")))
    (tmp_path / "folder.mp4").mkdir()
    for output, fragment in ((own, "is an input of this run"), (tmp_path / "frames.png", "use a video extension"),
                             (tmp_path / "out.xyz", "use a video extension"),
                             # found after every frame was painted, naming a temporary file, and then again
                             # after every resume
                             (tmp_path / "folder.mp4", "is a folder: name a video file"),
                             (tmp_path / ("a" * 248 + ".mp4"), "cannot be written")):
        with pytest.raises(painterly.PainterlyError, match=fragment) as error:
            stylize_video(own, None, output, model="starry_night", size=32)
        assert "\n" not in str(error.value) and not Path(output).with_suffix(".frames").exists()
    assert own.read_bytes() == before and not (tmp_path / "frames.png").exists()


def test_frames_cut_short_by_max_time_are_counted_and_a_folder_says_it_has_no_audio(clip, tmp_path, monkeypatch,
                                                                                     capsys):
    """--max-time limits each frame; a frame it stopped early said nothing (the first came out as the photo on
    a busy machine). The video command counts them; a folder of frames says the audio is not in it. The bar
    shows an optimising frame's iterations as they go."""
    from helpers import use_fake_clock

    from painterly.cli import main

    clock = use_fake_clock(monkeypatch, "painterly.driver", "painterly.optimize")
    seen = []

    def frame(info):
        seen.append(info.stopped_early)

    def step(info):
        clock.advance(1.0)

    result = stylize_video(clip, EXAMPLES / "starry_night.jpg", tmp_path / "frames", size=32, iterations=4, scales=1,
                           max_time=2.5, video=painterly.VideoConfig(every=4), callback=frame, step_callback=step)
    assert seen == ["max_time"] * result.frames and result.frames == 2
    assert "the audio is left out: a folder of PNG frames holds none" in result.note
    assert stylize_video(clip, EXAMPLES / "starry_night.jpg", tmp_path / "whole", size=32, iterations=2, scales=1,
                         video=painterly.VideoConfig(every=4), callback=frame).frames == 2
    assert seen[2:] == [None, None]
    import painterly.cli_video as cli_video

    shown = cli_video._FrameBar.step

    def step_and_tick(bar, info):  # the bar shows a step at most twice a clock second: each one here
        shown(bar, info)
        clock.advance(1.0)

    monkeypatch.setattr(cli_video, "time", clock)
    monkeypatch.setattr(cli_video._FrameBar, "step", step_and_tick)
    code = main(["video", str(clip), str(EXAMPLES / "starry_night.jpg"), "-o", str(tmp_path / "cut.mp4"), "--size",
                 "32", "--iterations", "4", "--scales", "1", "--every", "4", "--max-time", "2.5"])
    err = capsys.readouterr().err
    assert code == 0 and "painterly: 2 of the 2 frames painted now cut short by --max-time (a limit for each frame)" in err
    assert "frame 1 iteration 1/4" in err


def test_a_stoprun_in_the_frame_callback_stops_the_video_keeping_its_frames(clip, tmp_path):
    def stop(info):
        if info.frame == 2:
            raise painterly.StopRun

    with pytest.raises(KeyboardInterrupt):
        stylize_video(clip, None, tmp_path / "cut.mp4", model="starry_night", size=32, callback=stop)
    assert sorted(p.name for p in (tmp_path / "cut.mp4.frames").glob("frame_*.png")) == ["frame_00001.png",
                                                                                          "frame_00002.png"]
    result = stylize_video(clip, None, tmp_path / "cut.mp4", model="starry_night", size=32, resume=True)
    assert result.frames == VideoSource(clip).info.frames and not (tmp_path / "cut.mp4.frames").exists()


def test_the_warping_error_takes_images_and_refuses_unpaired_outputs():
    """A notebook passes PIL images or one output too few: the same number for PIL images as for tensors,
    and a one-line refusal instead of an IndexError."""
    frames = panned_frames(3)
    pictures = [painterly.image.tensor_to_pil(f) for f in frames]
    assert painterly.warping_error(pictures, frames) == pytest.approx(painterly.warping_error(frames, frames), abs=1e-6)
    with pytest.raises(painterly.PainterlyError, match="an output per frame: 3 frames, 2 outputs"):
        painterly.warping_error(frames, frames[:2])
    with pytest.raises(painterly.PainterlyError, match="all of one size"):
        painterly.warping_error(frames, [frames[0], frames[1], frames[2][..., :20]])


def test_a_resumed_video_keeps_the_threads_it_began_on(clip, tmp_path, monkeypatch, capsys):
    """As an image's checkpoint does: another thread count sums each convolution in another order, so a
    resume without threads goes on with the first process's (the work folder records them); asking for
    others goes on with them, with a note."""
    import json

    from painterly import hardware

    monkeypatch.setattr(hardware, "usable_cpus", lambda dirs=None: 2)
    before = torch.get_num_threads()
    options = {"model": "starry_night", "precision": "fp32", "size": 64}

    def stop_after_two(info):
        if info.frame == 2:
            raise KeyboardInterrupt

    part = tmp_path / "part"
    try:
        with pytest.raises(KeyboardInterrupt):
            stylize_video(clip, None, part, callback=stop_after_two, threads=1, **options)
        assert json.loads((part / "plan.json").read_text())["threads"] == 1
        seen = []
        stylize_video(clip, None, part, resume=True, callback=lambda i: seen.append(torch.get_num_threads()),
                      **options)
        assert seen and set(seen) == {1}
        assert "computed on" not in capsys.readouterr().err

        other = tmp_path / "other"
        with pytest.raises(KeyboardInterrupt):
            stylize_video(clip, None, other, callback=stop_after_two, threads=1, **options)
        seen.clear()
        stylize_video(clip, None, other, resume=True, threads=2,
                      callback=lambda i: seen.append(torch.get_num_threads()), **options)
        assert seen and set(seen) == {2}
        assert f"'{other}' was computed on 1 threads; on 2 the run goes on close to" in capsys.readouterr().err
    finally:
        torch.set_num_threads(before)


def test_plan_video_and_the_video_dry_run_count_the_frames_and_paint_nothing(clip, tmp_path, capsys):
    """The image command had --dry-run and the video command had none: a user could not see a video's frames,
    size and hours before starting it."""
    from painterly.cli import main

    planned = painterly.plan_video(clip, EXAMPLES / "starry_night.jpg", size=64, iterations=20, scales=2,
                                   video=painterly.VideoConfig(every=2, later_iterations=5))
    assert planned.frames == VideoSource(clip, every=2).info.frames and max(planned.size) == 64
    assert len(planned.first.scales) == 2 and [s.iterations for s in planned.later.scales] == [5]
    assert planned.seconds == pytest.approx(planned.first.seconds + (planned.frames - 1) * planned.later.seconds)
    network = painterly.plan_video(clip, None, model="starry_night", size=32)
    assert network.later is None and network.seconds == pytest.approx(network.frames * network.first.seconds)
    out = tmp_path / "o.mp4"
    code = main(["video", str(clip), str(EXAMPLES / "starry_night.jpg"), "-o", str(out), "--size", "32", "--dry-run"])
    printed = capsys.readouterr().out
    assert code == 0 and printed.startswith(f"painterly video plan: {VideoSource(clip).info.frames} frames")
    assert "each later frame" in printed and "estimated time" in printed
    assert main(["video", str(clip), str(EXAMPLES / "starry_night.jpg"), "-o", str(out), "--size", "32",
                 "--max-memory", "0.01", "--dry-run"]) == 2
    assert "does NOT fit" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []
    # what the run would refuse at once, the plan refuses too
    with pytest.raises(painterly.PainterlyError, match="later-iterations"):
        painterly.plan_video(clip, None, model="starry_night", size=32,
                             video=painterly.VideoConfig(later_iterations=5))
    with pytest.raises(painterly.PainterlyError, match="at least one style image is needed"):
        painterly.plan_video(clip, None, method="gatys", size=32)
    with pytest.raises(painterly.PainterlyError, match="is a video option"):
        painterly.plan_video(clip, EXAMPLES / "starry_night.jpg", size=32, every=2)


def test_a_folder_of_frames_plays_in_number_order(tmp_path):
    """Frames named 1.png .. 11.png played 1, 10, 11, 2, ... (text order): a scrambled video, unsaid."""
    from PIL import Image

    for n in range(1, 12):
        Image.new("RGB", (16, 16), (n * 20, 0, 0)).save(tmp_path / f"{n}.png")
    reds = [round(float(frame[0, 0].mean()) * 255) for frame in VideoSource(tmp_path, fps=25)]
    assert reds == [n * 20 for n in range(1, 12)]
