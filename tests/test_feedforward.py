"""Trained style networks: shapes at odd sizes, conditional instance norm, banded inference equal to
whole-image inference, model files (round trip, one-line refusals), a tiny training run that learns
and resumes exactly, --extend leaving the existing styles alone, the method through the API."""

from __future__ import annotations

import dataclasses
import signal
import types

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import painterly
from painterly import training
from painterly.checkpoint import Checkpointer, Interrupted
from painterly.errors import PainterlyError
from painterly.features import FeatureExtractor
from painterly.nets import padding, transformer
from painterly.nets.io import load_model, save_model
from painterly.nets.transformer import Architecture, TransformerNet
from painterly.losses import LossTerms
from painterly.training import LoopConfig, Trainee, TrainConfig, deepened, run_loop, sample_batch, train, widened

TINY = Architecture((4, 8, 8), 1, 3)


def _net(arch=TINY, seed=0) -> TransformerNet:
    torch.manual_seed(seed)
    net = TransformerNet(arch).eval()
    with torch.no_grad():  # make every style's normalisation different, so mixing is visible
        for norm in net.norms:
            norm.scale.add_(torch.randn_like(norm.scale) * 0.5)
            norm.shift.add_(torch.randn_like(norm.shift) * 0.5)
    return net


@pytest.mark.parametrize("h,w", [(17, 23), (32, 32), (45, 61), (64, 20)])
def test_output_has_the_input_size_at_odd_sizes(h, w):
    assert _net()(torch.rand(1, 3, h, w)).shape == (1, 3, h, w)


def test_one_hot_weights_equal_the_single_style_network():
    multi = _net()
    for k in range(3):
        single = TransformerNet(Architecture(TINY.widths, TINY.residual_blocks, 1)).eval()
        state = {name: (v[k:k + 1] if name.startswith("norms.") else v) for name, v in multi.state_dict().items()}
        single.load_state_dict(state)
        x = torch.rand(1, 3, 24, 28)
        assert torch.allclose(multi(x, multi.style_weights([1.0 * (i == k) for i in range(3)])), single(x), atol=1e-6)


def test_interpolation_endpoints_and_middle():
    net, x = _net(), torch.rand(1, 3, 24, 24)
    a, b = net(x, net.style_weights([1, 0, 0])), net(x, net.style_weights([0, 1, 0]))
    assert torch.allclose(net(x, net.style_weights([1, 0, 0])), a) and not torch.allclose(a, b, atol=1e-3)
    mid = net(x, net.style_weights([0.5, 0.5, 0]))
    assert (mid - a).abs().mean() > 1e-4 and (mid - b).abs().mean() > 1e-4
    # a per-pixel weight map equal everywhere is the same as the vector
    grid = torch.tensor([0.5, 0.5, 0.0]).view(1, 3, 1, 1).expand(1, 3, 24, 24)
    assert torch.allclose(net(x, net.style_weights(grid)), mid, atol=1e-5)


def test_a_weight_map_gives_each_region_its_style():
    net, x = _net(), torch.rand(1, 3, 32, 48)
    left = torch.zeros(1, 3, 32, 48)
    left[:, 0, :, :24] = 1
    left[:, 1, :, 24:] = 1
    mixed = net(x, net.style_weights(left))
    a, b = net(x, net.style_weights([1, 0, 0])), net(x, net.style_weights([0, 1, 0]))
    assert (mixed[..., :16] - a[..., :16]).abs().mean() < 0.75 * (mixed[..., :16] - b[..., :16]).abs().mean()
    assert (mixed[..., 32:] - b[..., 32:]).abs().mean() < 0.75 * (mixed[..., 32:] - a[..., 32:]).abs().mean()


def test_pixels_no_style_mask_covers_mix_the_styles_evenly():
    net = _net()
    partial = torch.zeros(1, 3, 8, 8)
    partial[:, 0, :, :4] = 2  # the left half in style 0; the right half in no mask
    weights = net.style_weights(partial)
    assert torch.equal(weights[:, :, :, :4], F.one_hot(torch.tensor(0), 3).float().view(1, 3, 1, 1).expand(1, 3, 8, 4))
    assert torch.allclose(weights[:, :, :, 4:], torch.full((1, 3, 8, 4), 1 / 3))


def test_one_style_in_one_mask_keeps_the_photo_outside_it(tmp_path):
    """A single-style network (as AdaIN or WCT with one style) given one mask paints inside it and keeps
    the photo outside, as an optimising method does; with it the mask is not ignored."""
    path = save_model(tmp_path / "m.safetensors", _net(Architecture((4, 8, 8), 1, 1)), {"styles": ["a"]})
    g = torch.Generator().manual_seed(0)
    photo = F.interpolate(torch.rand(1, 3, 6, 8, generator=g), size=(48, 64), mode="bilinear")
    mask = torch.zeros(1, 1, 48, 64)
    mask[..., :32] = 1  # the style on the left half
    common = dict(model=str(path), size=64, precision="fp32")
    masked = np.asarray(painterly.stylize(photo, style_masks=[mask], **common), dtype=np.float64)
    whole = np.asarray(painterly.stylize(photo, **common), dtype=np.float64)
    pixels = (photo[0].permute(1, 2, 0).numpy() * 255).round()
    assert np.abs(masked[:, 34:] - pixels[:, 34:]).max() <= 1  # the photo (8-bit rounding)
    assert np.abs(masked[:, :30] - whole[:, :30]).max() <= 1  # the network's picture
    assert np.abs(whole[:, 34:] - pixels[:, 34:]).mean() > 10  # which differs from the photo


def test_an_all_black_mask_leaves_its_style_out_of_a_multi_style_picture(tmp_path):
    """A model's styles are fixed, so painting "sky in style 1, the rest in style 2" with a 3-style
    model takes a black mask for style 3 (it was refused as empty); a picture with every mask black is
    still refused."""
    path = save_model(tmp_path / "m.safetensors", _net(), {"styles": ["a", "b", "c"]})
    g = torch.Generator().manual_seed(0)
    photo = F.interpolate(torch.rand(1, 3, 6, 8, generator=g), size=(48, 64), mode="bilinear")
    top, bottom, black = torch.zeros(1, 1, 48, 64), torch.zeros(1, 1, 48, 64), torch.zeros(1, 1, 48, 64)
    top[..., :24, :], bottom[..., 24:, :] = 1, 1
    common = dict(model=str(path), size=64, precision="fp32")
    regions = np.asarray(painterly.stylize(photo, style_masks=[top, bottom, black], **common), dtype=np.float64)
    alone = [np.asarray(painterly.stylize(photo, style_weights=w, **common), dtype=np.float64)
             for w in ((1, 0, 0), (0, 1, 0), (0, 0, 1))]
    inner_top, inner_bottom = (slice(0, 16), slice(None)), (slice(32, 48), slice(None))
    assert np.abs(regions[inner_top] - alone[0][inner_top]).mean() < 0.75 * np.abs(
        regions[inner_top] - alone[2][inner_top]).mean()
    assert np.abs(regions[inner_bottom] - alone[1][inner_bottom]).mean() < 0.75 * np.abs(
        regions[inner_bottom] - alone[2][inner_bottom]).mean()
    with pytest.raises(PainterlyError, match="every style mask is empty"):
        painterly.stylize(photo, style_masks=[black, black, black], **common)


@pytest.mark.parametrize("rows", [3, 8, 13])
def test_banded_inference_equals_the_whole_image(rows):
    net = _net(Architecture((6, 8, 12), 2, 2))
    x = torch.rand(1, 3, 43, 57)
    w = net.style_weights([0.3, 0.7])
    with torch.no_grad():
        assert torch.allclose(net.run_banded(x, w, rows), net(x, w), atol=1e-5)


def test_model_file_round_trip_in_fp16(tmp_path):
    net, x = _net(), torch.rand(1, 3, 32, 32)
    path = save_model(tmp_path / "m.safetensors", net, {"styles": ["a", "b", "c"]})
    back, meta = load_model(path)
    assert meta["styles"] == ["a", "b", "c"] and meta["architecture"]["styles"] == 3
    w = net.style_weights([0, 1, 0])
    with torch.no_grad():
        assert (back(x, w) - net(x, w)).abs().max() < 0.02  # fp16 weights
        assert torch.equal(back(x, w), load_model(path)[0](x, w))


@pytest.mark.parametrize("kind,words", [("truncated", "not a painterly style network file"),
                                        ("text", "not a painterly style network file"),
                                        ("other_arch", "convs.0.conv.weight is"), ("pickle", "not a painterly"),
                                        ("no_metadata", "not a painterly"), ("nan", "non-finite weights"),
                                        ("flipped", "damaged: its checksum does not match")])
def test_bad_model_files_are_one_line_errors(tmp_path, kind, words):
    import pickle

    from safetensors.torch import save_file

    path = tmp_path / "bad.safetensors"
    good = save_model(tmp_path / "good.safetensors", _net(), {"styles": ["a", "b", "c"]})
    if kind == "truncated":
        path.write_bytes(good.read_bytes()[:-100])
    elif kind == "flipped":  # one weight's low byte changed: still finite, still loads without the checksum
        data = bytearray(good.read_bytes())
        data[-2] ^= 1
        path.write_bytes(bytes(data))
    elif kind == "text":
        path.write_text("not a model")
    elif kind == "pickle":
        path.write_bytes(pickle.dumps({"weights": 1}))
    elif kind == "no_metadata":
        save_file({"x": torch.ones(2)}, str(path))
    else:  # weights of one shape under the architecture of another, or a weight that is NaN
        import json

        from safetensors import safe_open

        with safe_open(str(good), "pt") as f:
            meta = json.loads(f.metadata()["painterly"])
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        if kind == "nan":
            tensors["convs.0.conv.weight"][0, 0, 0, 0] = float("nan")
        else:
            meta["architecture"]["widths"] = [8, 8, 8]
        save_file(tensors, str(path), metadata={"painterly": json.dumps(meta)})
    with pytest.raises(PainterlyError) as info:
        load_model(path)
    assert "\n" not in str(info.value) and "bad.safetensors" in str(info.value) and words in str(info.value), info.value


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos" / "nested"
    folder.mkdir(parents=True)
    g = np.random.default_rng(0)
    for i in range(4):
        a = (g.random((40 + 8 * i, 56, 3)) * 80 + np.linspace(0, 150, 56)[None, :, None]).astype(np.uint8)
        Image.fromarray(a).save(folder / f"p{i}.png")
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    return tmp_path / "photos"


@pytest.fixture(scope="module")
def tiny_vgg():
    return FeatureExtractor.random(seed=0, last_layer="relu5_3", precision="fp32")


def _config(**kw):
    base = dict(steps=8, batch=2, crop=32, style_size=48, widths=(4, 8, 8), residual_blocks=1, precision="fp32",
                device="cpu", seed=1, learning_rate=0.02, style_weight=1e4)
    return TrainConfig(**{**base, **kw})


def _style(seed=3):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, 3, 48, 48, generator=g) * torch.tensor([0.2, 0.4, 1.0]).view(1, 3, 1, 1)


def test_a_model_written_inside_its_photo_folder_does_not_train_on_its_own_sheets(tmp_path, photos, tiny_vgg):
    """MODEL.preview.png and MODEL.loss.png beside MODEL.safetensors are the training's own pictures:
    the next training on that folder took them for photos (3 photos became 5). A photo that only
    happens to be named so is still a photo."""
    from painterly.training import photo_files

    nested = photos / "nested"
    info = train([_style()], photos, nested / "m.safetensors", _config(steps=2, preview_every=1), extractor=tiny_vgg,
                 validation=nested / "p0.png", preview=lambda step, image: None, style_names=["s"])
    Image.new("RGB", (40, 40)).save(nested / "m.preview.png")
    Image.new("RGB", (40, 40)).save(nested / "m.loss.png")
    Image.new("RGB", (40, 40)).save(nested / "sunset.preview.png")  # no sunset model beside it
    names = sorted(p.name for p in photo_files([photos]))
    assert "m.preview.png" not in names and "m.loss.png" not in names and "sunset.preview.png" in names
    again = train([_style()], photos, tmp_path / "n.safetensors", _config(steps=1), extractor=tiny_vgg,
                  style_names=["s"])
    assert again["training"]["photos"] == info["training"]["photos"] + 1  # the sunset only


def test_training_lowers_the_loss_and_counts_unreadable_photos(tmp_path, photos, tiny_vgg):
    info = train([_style()], photos, tmp_path / "m.safetensors", _config(steps=30), extractor=tiny_vgg, style_names=["blue"])
    log = [r["total"] for r in info["log"]]
    assert np.mean(log[-5:]) < 0.5 * np.mean(log[:5])
    assert info["training"]["photos"] == 4 and info["training"]["skipped"] == 1
    net, meta = load_model(tmp_path / "m.safetensors")
    assert meta["styles"] == ["blue"] and meta["training"]["steps"] == 30


def test_strotss_training_lowers_its_loss_and_pulls_the_palette_to_the_style(tmp_path, photos, tiny_vgg):
    info = train([_style()], photos, tmp_path / "m.safetensors",
                 _config(steps=30, loss="strotss", style_weight=None), extractor=tiny_vgg, style_names=["blue"])
    log = info["log"]
    assert set(log[0]) >= {"content", "style", "moments", "palette", "total"}
    assert np.mean([r["total"] for r in log[-5:]]) < 0.7 * np.mean([r["total"] for r in log[:5]])
    net, meta = load_model(tmp_path / "m.safetensors")
    assert meta["training"]["loss"] == "strotss"
    from painterly.training_losses import DEFAULT_WEIGHTS  # the card says the weights it trained at

    assert meta["training"]["style_weight"] == DEFAULT_WEIGHTS["strotss"][1] != DEFAULT_WEIGHTS["gram"][1]
    photo = torch.from_numpy(np.asarray(Image.open(photos / "nested" / "p0.png"), dtype=np.float32) / 255)
    out = net(photo.permute(2, 0, 1)[None]).clamp(0, 1)
    style_blue = float((_style()[:, 2] - _style()[:, 0]).mean())
    before = float((photo[..., 2] - photo[..., 0]).mean())
    after = float((out[:, 2] - out[:, 0]).mean())
    assert abs(after - style_blue) < 0.7 * abs(before - style_blue)


def test_train_takes_one_style_and_options_by_name(tmp_path, photos, tiny_vgg):
    """The API reads like stylize: a single style, options by keyword (over a config when both)."""
    info = train(_style(), photos, tmp_path / "m.safetensors", steps=2, batch=1, crop=32, widths=(4, 8, 8),
                 residual_blocks=1, precision="fp32", extractor=tiny_vgg)
    assert info["training"]["steps"] == 2 and info["styles"] == ["style 1"]
    again = train(_style(), photos, tmp_path / "n.safetensors", _config(steps=3), steps=1, extractor=tiny_vgg)
    assert again["training"]["steps"] == 1 and again["training"]["crop"] == _config().crop
    with pytest.raises(PainterlyError, match=r"unknown training option 'stpes' \(did you mean steps\?\)"):
        train(_style(), photos, tmp_path / "x.safetensors", stpes=2)
    with pytest.raises(PainterlyError, match=r"style_names names 2 style\(s\) for 1 style image"):  # was named 'a+b'
        train(_style(), photos, tmp_path / "x.safetensors", steps=2, style_names=["a", "b"])
    with pytest.raises(PainterlyError, match="validation photo is 300x3 px; each side must be at least 16 px"):
        train(_style(), photos, tmp_path / "v.safetensors", steps=2, extractor=tiny_vgg,
              validation=torch.rand(1, 3, 3, 300))
    for output, words in ((tmp_path / "m.png", "unknown extension"), (tmp_path / "none" / "m.safetensors", "does not exist")):
        with pytest.raises(PainterlyError, match=words):  # refused before a step, as on the command line
            train(_style(), photos, output, steps=2, extractor=tiny_vgg)
        assert not output.exists()


def test_a_step_whose_gradients_overflow_is_skipped_and_a_run_of_them_stops_the_training(tmp_path, photos, tiny_vgg,
                                                                                         monkeypatch):
    """Gradients that are not finite (bf16 on a flat crop) leave the weights as they were for that step and
    training goes on; MAX_OVERFLOWED_STEPS of them running stop it in one line that names fp32."""
    import painterly.distributed as distributed
    import painterly.training as training
    from painterly.nets.io import load_model

    overflow_at: set = set()
    calls = []
    average = distributed.average_gradients

    def overflowing(parameters, size):
        average(parameters, size)
        calls.append(1)
        if len(calls) in overflow_at:
            grad = next(p for p in parameters if p.grad is not None).grad
            grad[(0,) * grad.dim()] = float("inf")

    monkeypatch.setattr(distributed, "average_gradients", overflowing)
    train([_style()], photos, tmp_path / "two.safetensors", _config(steps=2), extractor=tiny_vgg)
    calls.clear()
    overflow_at.add(3)  # the third of three steps skipped: the model of two steps
    train([_style()], photos, tmp_path / "three.safetensors", _config(steps=3), extractor=tiny_vgg)
    two, three = load_model(tmp_path / "two.safetensors")[0], load_model(tmp_path / "three.safetensors")[0]
    assert all(torch.equal(a, b) for a, b in zip(two.state_dict().values(), three.state_dict().values()))
    calls.clear()
    overflow_at.update(range(1, 100))
    with pytest.raises(PainterlyError, match="overflowed on 20 steps running.*--precision fp32") as info:
        train([_style()], photos, tmp_path / "never.safetensors", _config(steps=30), extractor=tiny_vgg)
    assert "\n" not in str(info.value) and training.MAX_OVERFLOWED_STEPS == 20 and len(calls) == 20
    assert not (tmp_path / "never.safetensors").exists()


def _train_until(stop_at: int, tmp_path, photos, config, extractor) -> None:
    """Train b.safetensors with checkpoints to t.ckpt, stopped (as by Ctrl-C) after step `stop_at`."""
    ckpt = Checkpointer(tmp_path / "t.ckpt", seconds=None)

    def stop(step, steps, losses, rate):
        if step == stop_at:
            ckpt.request_stop(signal.SIGINT)

    with pytest.raises(Interrupted) as info:
        train([_style()], photos, tmp_path / "b.safetensors", config, extractor=extractor, checkpoint=ckpt,
              callback=stop, style_names=["s"])
    assert str(info.value) == f"interrupted at step {stop_at}/{config.steps}"  # a training has no scales


@pytest.mark.parametrize("loss", ["gram", "strotss"])
def test_training_resumes_bit_exactly(tmp_path, photos, tiny_vgg, loss):
    # stopped inside the warm-up: the resumed run takes up the same learning rates
    config = _config(steps=6, loss=loss, style_weight=None if loss == "strotss" else 1e4, warmup=4)
    train([_style()], photos, tmp_path / "a.safetensors", config, extractor=tiny_vgg, style_names=["s"])
    _train_until(3, tmp_path, photos, config, tiny_vgg)
    resume = {"checkpoint": Checkpointer(tmp_path / "t.ckpt", seconds=None, resume=True)} if loss == "gram" else \
        {"checkpoint": str(tmp_path / "t.ckpt"), "resume": True}  # a path, as stylize() takes
    train([_style()], photos, tmp_path / "b.safetensors", config, extractor=tiny_vgg, style_names=["s"], **resume)
    assert not (tmp_path / "t.ckpt").exists()  # a finished run's checkpoint goes
    a, b = load_model(tmp_path / "a.safetensors")[0], load_model(tmp_path / "b.safetensors")[0]
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_a_training_cut_short_by_max_time_keeps_its_checkpoint_and_resumes_exactly(tmp_path, photos, tiny_vgg,
                                                                                  monkeypatch):
    """--max-time writes the model of the steps done and leaves the checkpoint, so a user training an hour
    a night goes on the next night (it was deleted: the run could never be taken further exactly). A
    preview of the last step is rendered, as the summary says. A clock that ticks a second a call makes
    where the limit falls the same on every machine."""
    config = _config(steps=8, preview_every=100)
    train([_style()], photos, tmp_path / "a.safetensors", config, extractor=tiny_vgg, style_names=["s"])
    ticks = iter(range(10**6))
    monkeypatch.setattr(training, "time", types.SimpleNamespace(monotonic=lambda: float(next(ticks))))
    previews = []
    ckpt = Checkpointer(tmp_path / "t.ckpt", seconds=None)
    cut = train([_style()], photos, tmp_path / "b.safetensors", dataclasses.replace(config, max_time=12),
                extractor=tiny_vgg, checkpoint=ckpt, style_names=["s"], validation=photos / "nested" / "p0.png",
                preview=lambda step, image: previews.append(step))
    done = cut["training"]["steps_done"]
    assert 0 < done < 8 and previews == [done] and (tmp_path / "t.ckpt").is_file()
    monkeypatch.undo()
    with pytest.raises(PainterlyError, match=r"other input images or options \(steps 8 then, 9 now\)"):
        train([_style()], photos, tmp_path / "b.safetensors", dataclasses.replace(config, steps=9),
              extractor=tiny_vgg, checkpoint=Checkpointer(tmp_path / "t.ckpt", seconds=None, resume=True),
              style_names=["s"])
    train([_style()], photos, tmp_path / "b.safetensors", config, extractor=tiny_vgg,
          checkpoint=Checkpointer(tmp_path / "t.ckpt", seconds=None, resume=True), style_names=["s"])
    assert not (tmp_path / "t.ckpt").exists()  # finished: gone
    a, b = load_model(tmp_path / "a.safetensors")[0], load_model(tmp_path / "b.safetensors")[0]
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_a_stopped_training_is_neither_resumed_on_other_photos_nor_replaced_by_another_run(tmp_path, photos,
                                                                                           tiny_vgg):
    """The checkpoint's fingerprint covers the photos: a resume on a folder with a photo gone, or one changed
    under the same name, would continue a run that never was (and its model card would name the new count).
    A fresh run with other options refuses to replace an unfinished training's checkpoint: its hours were
    lost silently, where the same command again was refused."""
    config = _config(steps=6)
    _train_until(2, tmp_path, photos, config, tiny_vgg)
    (photos / "nested" / "p3.png").unlink()
    with pytest.raises(PainterlyError, match=r"other input images or options \(photos 4 then, 3 now; the photos "
                                             r"differ\)"):
        train([_style()], photos, tmp_path / "b.safetensors", config, extractor=tiny_vgg,
              checkpoint=Checkpointer(tmp_path / "t.ckpt", seconds=None, resume=True), style_names=["s"])
    first = photos / "nested" / "p0.png"
    Image.fromarray(255 - np.asarray(Image.open(first))).save(tmp_path / "p3.png")
    (tmp_path / "p3.png").rename(photos / "nested" / "p3.png")  # four photos again, one of them another
    with pytest.raises(PainterlyError, match=r"other input images or options \(the photos differ\)"):
        train([_style()], photos, tmp_path / "b.safetensors", config, extractor=tiny_vgg,
              checkpoint=Checkpointer(tmp_path / "t.ckpt", seconds=None, resume=True), style_names=["s"])
    saved = (tmp_path / "t.ckpt").read_bytes()
    with pytest.raises(PainterlyError, match=r"t.ckpt' holds the progress of another run \(.*steps 6 then, 2 now"
                                             r".*\): resume that run with its own options, delete the file"):
        train([_style()], photos, tmp_path / "b.safetensors", dataclasses.replace(config, steps=2),
              extractor=tiny_vgg, checkpoint=Checkpointer(tmp_path / "t.ckpt", seconds=None), style_names=["s"])
    assert (tmp_path / "t.ckpt").read_bytes() == saved and not (tmp_path / "b.safetensors").exists()


def test_a_checkpoint_made_before_the_photos_were_fingerprinted_resumes_as_it_was_made(tmp_path, photos, tiny_vgg):
    """A training stopped under an older version (its fingerprint without the photos) was refused after the
    upgrade as "the photos differ" though they were the same; it goes on, exactly."""
    from painterly.checkpoint import fingerprint, read_checkpoint, write_checkpoint

    config = _config(steps=6)
    train([_style()], photos, tmp_path / "a.safetensors", config, extractor=tiny_vgg, style_names=["s"])
    _train_until(3, tmp_path, photos, config, tiny_vgg)
    data = read_checkpoint(tmp_path / "t.ckpt")
    old = {k: v for k, v in data["record"]["options"].items() if k not in ("photos", "photos_sha256")}
    data["record"]["options"], data["fingerprint"] = old, fingerprint([_style()], old)
    write_checkpoint(tmp_path / "t.ckpt", data)
    train([_style()], photos, tmp_path / "b.safetensors", config, extractor=tiny_vgg, style_names=["s"],
          checkpoint=Checkpointer(tmp_path / "t.ckpt", seconds=None, resume=True))
    a, b = load_model(tmp_path / "a.safetensors")[0], load_model(tmp_path / "b.safetensors")[0]
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_a_resumed_auto_training_keeps_the_precision_it_began_in(tmp_path, photos, tiny_vgg, monkeypatch):
    """auto times bf16 in each process: on a busy machine a later process may choose otherwise. The
    checkpoint records the precision the run computed in, and a resumed auto run goes on in it."""
    from painterly import hardware

    config = _config(steps=5, precision="auto")
    monkeypatch.setattr(hardware, "bf16_pays", lambda device="cpu": False)
    train([_style()], photos, tmp_path / "a.safetensors", config, extractor=tiny_vgg, style_names=["s"])
    _train_until(2, tmp_path, photos, config, tiny_vgg)
    monkeypatch.setattr(hardware, "bf16_pays", lambda device="cpu": True)  # this process would choose bf16
    resumed = Checkpointer(tmp_path / "t.ckpt", seconds=None, resume=True)
    assert resumed.pinned_precision("auto") == "fp32" and resumed.pinned_precision("bf16") == "bf16"
    train([_style()], photos, tmp_path / "b.safetensors", config, extractor=tiny_vgg, checkpoint=resumed,
          style_names=["s"])
    a, b = load_model(tmp_path / "a.safetensors")[0], load_model(tmp_path / "b.safetensors")[0]
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    # in bf16 from the start the same steps give other weights: the pin is what kept them equal
    train([_style()], photos, tmp_path / "c.safetensors", config, extractor=tiny_vgg, style_names=["s"])
    c = load_model(tmp_path / "c.safetensors")[0]
    assert not all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), c.state_dict().values()))


@pytest.mark.parametrize("pad", [1, 4])
def test_a_border_reflected_in_place_equals_reflection_padding(pad):
    """Inference writes each layer into the middle of the next one's padded input and reflects only the
    border: the same map as F.pad's reflection, corners included."""
    x = torch.rand(1, 5, 9, 13).contiguous(memory_format=torch.channels_last)
    buffer = torch.full((1, 5, 9 + 2 * pad, 13 + 2 * pad), float("nan")).contiguous(memory_format=torch.channels_last)
    padding.interior(buffer, pad).copy_(x)
    padding.reflect_border(buffer, pad)
    assert torch.equal(buffer, F.pad(x, (pad, pad, pad, pad), mode="reflect"))


def test_the_training_rate_counts_the_time_previews_take_as_the_bars_step_rate_does(tmp_path, photos, tiny_vgg):
    """images/s was the step's compute alone: beside the bar's s/step, which counts previews and checkpoints,
    the two disagreed (6.3 img/s at 1.11 step/s of 4 images)."""
    import time

    config = _config(steps=4, preview_every=1)
    rates = []
    train([_style()], photos, tmp_path / "m.safetensors", config, extractor=tiny_vgg,
          callback=lambda step, steps, losses, rate: rates.append(rate),
          preview=lambda step, image: time.sleep(0.3), style_names=["s"])
    assert len(rates) == 4 and max(rates[1:]) <= config.batch / 0.3  # each later step waited for a preview


def test_a_resumed_training_shows_the_earlier_previews_first(tmp_path, photos, tiny_vgg):
    """The preview sheet goes on where it stopped: the checkpoint keeps the last renders (8-bit)."""
    config = _config(steps=6, preview_every=2)
    ckpt, seen = Checkpointer(tmp_path / "t.ckpt", seconds=None), []

    def stop(step, steps, losses, rate):
        if step == 4:
            ckpt.request_stop(signal.SIGINT)

    with pytest.raises(Interrupted):
        train([_style()], photos, tmp_path / "m.safetensors", config, extractor=tiny_vgg, checkpoint=ckpt,
              callback=stop, preview=lambda step, image: seen.append((step, image)), style_names=["s"])
    before = list(seen)
    seen.clear()
    train([_style()], photos, tmp_path / "m.safetensors", config, extractor=tiny_vgg,
          checkpoint=Checkpointer(tmp_path / "t.ckpt", seconds=None, resume=True),
          preview=lambda step, image: seen.append((step, image)), style_names=["s"])
    assert [s for s, _ in before] == [2, 4] and [s for s, _ in seen] == [2, 4, 6]
    for (_, first), (_, replayed) in zip(before, seen):
        assert replayed.shape == first.shape and (replayed - first).abs().max() <= 0.5 / 255 + 1e-6
    # resumed with another validation photo, the old photo's renders are not shown beside the new one's
    ckpt, seen = Checkpointer(tmp_path / "u.ckpt", seconds=None), []
    with pytest.raises(Interrupted):
        train([_style()], photos, tmp_path / "n.safetensors", config, extractor=tiny_vgg, checkpoint=ckpt,
              callback=stop, preview=lambda step, image: None, style_names=["s"])
    other = torch.rand(1, 3, 40, 40, generator=torch.Generator().manual_seed(9))
    train([_style()], photos, tmp_path / "n.safetensors", config, extractor=tiny_vgg, validation=other,
          checkpoint=Checkpointer(tmp_path / "u.ckpt", seconds=None, resume=True),
          preview=lambda step, image: seen.append((step, image)), style_names=["s"])
    assert [s for s, _ in seen] == [6]


def test_extend_adds_a_style_and_leaves_the_others_unchanged(tmp_path, photos, tiny_vgg):
    """Also: a multi-style training's preview shows the photo in every style it trains, side by side
    (it showed the style of the step just trained: with --preview-every a multiple of the style count,
    always the same one); an extension's shows the new style."""
    base, previews = tmp_path / "two.safetensors", {}
    photo = torch.rand(1, 3, 24, 20, generator=torch.Generator().manual_seed(2))
    train([_style(3), _style(4)], photos, base, _config(steps=4, multi_style=True, preview_every=2),
          extractor=tiny_vgg, style_names=["a", "b"], validation=photo,
          preview=lambda step, image: previews.__setitem__(step, image))
    train([_style(5)], photos, tmp_path / "three.safetensors", _config(steps=4, preview_every=4), extend=base,
          extractor=tiny_vgg, style_names=["c"], validation=photo,
          preview=lambda step, image: previews.__setitem__(("c", step), image))
    assert sorted(previews, key=str) == [("c", 4), 2, 4]
    assert previews[2].shape[-2:] == previews[4].shape[-2:] == (24, 40) and previews[("c", 4)].shape[-1] == 20
    # the row is each trained style in the model's order (a random 3-style net, its last two trained)
    torch.manual_seed(0)
    net = TransformerNet(Architecture((4, 8, 8), 1, 3))
    for p in net.parameters():
        p.data.normal_(0, 0.5)
    trainee = training.NetworkTrainee(net, list(net.parameters()), types.SimpleNamespace(style_count=2), 1, "fp32",
                                      torch.device("cpu"))
    with torch.no_grad():
        row = trainee.render(photo, 7)
        alone = [net(photo, net.style_weights([1.0 * (i == k) for i in range(3)])) for k in (1, 2)]
    assert torch.equal(row, torch.cat(alone, dim=-1)) and (alone[0] - alone[1]).abs().mean() > 0.01
    two, _ = load_model(base)
    three, meta = load_model(tmp_path / "three.safetensors")
    assert meta["styles"] == ["a", "b", "c"]
    x = torch.rand(1, 3, 32, 32)
    for k in range(2):
        w2, w3 = two.style_weights([1.0 * (i == k) for i in range(2)]), three.style_weights([1.0 * (i == k) for i in range(3)])
        assert torch.equal(two(x, w2), three(x, w3))
    assert not torch.equal(three(x, three.style_weights([0, 0, 1])), three(x, three.style_weights([1, 0, 0])))
    # a set of works is one style, so it extends too; a name the model holds already gets a number
    info = train([_style(6), _style(7)], photos, tmp_path / "four.safetensors", _config(steps=1, style_set=True),
                 extend=tmp_path / "three.safetensors", extractor=tiny_vgg, style_names=["d", "e"])
    assert info["styles"] == ["a", "b", "c", "set of 2: d, e"]
    info = train([_style(8)], photos, tmp_path / "five.safetensors", _config(steps=1), extend=base,
                 extractor=tiny_vgg, style_names=["a"])
    assert info["styles"] == ["a", "b", "a 2"]


def test_init_starts_from_a_trained_model_with_its_architecture(tmp_path, photos, tiny_vgg):
    first = train([_style()], photos, tmp_path / "a.safetensors", _config(steps=20), extractor=tiny_vgg, style_names=["s"])
    more = tmp_path / "more"
    more.mkdir()
    Image.open(photos / "nested" / "p0.png").transpose(Image.FLIP_TOP_BOTTOM).save(more / "q.png")
    # other widths asked for: the model's own are what train further
    second = train([_style()], [photos, more], tmp_path / "b.safetensors", _config(steps=4, widths=(8, 8, 8)),
                   init=tmp_path / "a.safetensors", extractor=tiny_vgg, style_names=["s"])
    assert second["training"]["photos"] == 5 and tuple(second["training"]["widths"]) == (4, 8, 8)
    assert second["log"][0]["total"] < 0.5 * first["log"][0]["total"]  # trained weights, not a fresh start
    a, b = load_model(tmp_path / "a.safetensors")[0], load_model(tmp_path / "b.safetensors")[0]
    assert b.arch == a.arch and any(not torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    for kwargs, fragment in ((dict(init=tmp_path / "a.safetensors", extend=tmp_path / "a.safetensors"), "give one"),
                             (dict(init=tmp_path / "none.safetensors"), "does not exist")):
        with pytest.raises(PainterlyError, match=fragment):
            train([_style()], photos, tmp_path / "c.safetensors", _config(steps=1), extractor=tiny_vgg, **kwargs, style_names=["s"])
    with pytest.raises(PainterlyError, match="holds 1 style") as info:
        train([_style(3), _style(4)], photos, tmp_path / "c.safetensors", _config(steps=1, multi_style=True),
              init=tmp_path / "a.safetensors", extractor=tiny_vgg, style_names=["a", "b"])
    assert "\n" not in str(info.value) and not (tmp_path / "c.safetensors").exists()


class _Linear(Trainee):
    """loss = sum(w): a constant gradient, so every Adam step moves each weight by exactly the learning rate."""

    def __init__(self) -> None:
        self.module = torch.nn.Linear(3, 1, bias=False)
        torch.nn.init.constant_(self.module.weight, 0.5)
        self.trainable = list(self.module.parameters())

    def loss(self, batch, step):
        return LossTerms({"total": self.module.weight.sum() + 0 * batch.mean()})


@pytest.mark.parametrize("warmup,steps,expected", [(0, 1, 0.1), (4, 1, 0.025), (4, 3, 0.025 * (1 + 2 + 3))])
def test_warmup_raises_the_learning_rate_linearly(warmup, steps, expected):
    trainee = _Linear()
    photos = [torch.rand(1, 3, 40, 40)]
    config = LoopConfig(steps=steps, batch=1, crop=32, learning_rate=0.1, warmup=warmup)
    run_loop(trainee, photos, config, torch.device("cpu"), torch.Generator().manual_seed(0), [], {}, None, None, None,
             None)
    assert torch.allclose(trainee.module.weight, torch.full((1, 3), 0.5 - expected), atol=1e-5)


def test_decay_lowers_the_rate_along_a_half_cosine_to_near_zero():
    config = LoopConfig(steps=10, learning_rate=0.1, warmup=2, decay=4)
    rates = [config.rate_at(step) for step in range(10)]
    assert rates[:6] == pytest.approx([0.05, 0.1, 0.1, 0.1, 0.1, 0.1])
    # steps 6..9 are the decay's 1st..4th of 4: 0.1 * (1 + cos(pi * k / 5)) / 2
    assert rates[6:] == pytest.approx([0.1 * (1 + np.cos(np.pi * k / 5)) / 2 for k in (1, 2, 3, 4)])
    assert rates[6] > rates[7] > rates[8] > rates[9] > 0 and rates[9] < 0.01
    with pytest.raises(PainterlyError, match="decay 11 is longer than the run"):
        LoopConfig(steps=10, decay=11)


def test_decay_moves_each_weight_by_the_sum_of_its_rates():
    trainee = _Linear()
    config = LoopConfig(steps=3, batch=1, crop=32, learning_rate=0.1, decay=2)
    run_loop(trainee, [torch.rand(1, 3, 40, 40)], config, torch.device("cpu"), torch.Generator().manual_seed(0), [],
             {}, None, None, None, None)
    moved = sum(config.rate_at(k) for k in range(3))
    assert moved == pytest.approx(0.1 + 0.1 * 0.75 + 0.1 * 0.25)
    assert torch.allclose(trainee.module.weight, torch.full((1, 3), 0.5 - moved), atol=1e-5)


@pytest.mark.parametrize("image_side,expected", [(None, 32 / 40), (64, 0.5), (32, 1.0)])
def test_image_side_sets_the_scale_the_crops_see(image_side, expected):
    """A photo whose rows ramp from 0 to 1 down its short side: a 32 px crop of it scaled to a short
    side of S spans 32/S of the ramp (default S = 1.25 x the crop)."""
    ramp = torch.linspace(0, 1, 200).view(1, 1, 200, 1).expand(1, 3, 200, 300).contiguous()
    config = LoopConfig(batch=6, crop=32, scale_jitter=0, image_side=image_side)
    crops = sample_batch([ramp], config, torch.Generator().manual_seed(0))
    spans = crops[:, 0, -1, 0] - crops[:, 0, 0, 0]
    assert crops.shape == (6, 3, 32, 32)
    assert spans.tolist() == pytest.approx([expected * 31 / 32] * 6, abs=0.02)
    with pytest.raises(PainterlyError, match="image-side 63 is smaller than the crop"):
        LoopConfig(crop=64, image_side=63)


def test_widened_network_computes_the_same_image_and_its_copies_part():
    net = _net(Architecture((4, 6, 8), 2, 3)).float()
    x = torch.rand(1, 3, 36, 44)
    weights = net.style_weights([0.2, 0.5, 0.3])
    wide = widened(net, (6, 12, 13), torch.Generator().manual_seed(0))
    assert wide.arch.widths == (6, 12, 13) and wide.arch.styles == 3 and wide.arch.residual_blocks == 2
    assert torch.allclose(wide(x, weights), net(x, weights), atol=1e-5)
    # a copy is read with other weights than its original, so their gradients differ
    first = wide.convs[1].conv.weight  # reads the 6 channels of stage 1: channels 4, 5 copy 0, 1
    assert not torch.allclose(first[:, 0], first[:, 4])
    assert torch.allclose(first[:, 0] + first[:, 4], net.convs[1].conv.weight[:, 0].repeat(3, 1, 1)[:12], atol=1e-6)
    with pytest.raises(PainterlyError, match="narrower than the model's 4,6,8"):
        widened(net, (4, 4, 8), torch.Generator())


def test_training_with_widen_grows_the_initial_model(tmp_path, photos, tiny_vgg):
    train([_style()], photos, tmp_path / "a.safetensors", _config(steps=10), extractor=tiny_vgg, style_names=["s"])
    info = train([_style()], photos, tmp_path / "b.safetensors", _config(steps=3, widen=(8, 12, 16)),
                 init=tmp_path / "a.safetensors", extractor=tiny_vgg, style_names=["s"])
    net, meta = load_model(tmp_path / "b.safetensors")
    assert net.arch.widths == (8, 12, 16) and tuple(meta["training"]["widths"]) == (8, 12, 16)
    assert info["log"][0]["total"] == pytest.approx(
        train([_style()], photos, tmp_path / "c.safetensors", _config(steps=1),
              init=tmp_path / "a.safetensors", extractor=tiny_vgg, style_names=["s"])["log"][0]["total"], rel=1e-4)
    with pytest.raises(PainterlyError, match="give it with --init"):
        train([_style()], photos, tmp_path / "d.safetensors", _config(steps=1, widen=(8, 12, 16)),
              extractor=tiny_vgg, style_names=["s"])


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_normalisation_statistics_in_chunks_equal_the_whole_maps(monkeypatch, channels_last, dtype):
    x = (torch.randn(2, 5, 9, 11, generator=torch.Generator().manual_seed(0)) * 3 + 7).to(dtype)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    exact_var, exact_mean = torch.var_mean(x.double(), dim=(2, 3), unbiased=False, keepdim=True)
    monkeypatch.setattr(transformer, "MOMENT_CHUNK", 2 * 5 * 7)  # 7 pixels a chunk: 15 chunks, the last short
    before = x.clone()
    with torch.no_grad():
        mean, var = transformer.moments(x)
    assert mean.dtype == var.dtype == torch.float32 and mean.shape == var.shape == (2, 5, 1, 1)
    assert torch.allclose(mean.double(), exact_mean, rtol=1e-6) and torch.allclose(var.double(), exact_var, rtol=1e-4)
    assert torch.equal(x, before)  # the map itself is untouched (the squares are taken in the buffer)
    # with gradients, the whole-map path: the same numbers, and they flow back
    leaf = x.float().requires_grad_()
    mean_g, var_g = transformer.moments(leaf)
    assert torch.allclose(mean_g.double(), exact_mean, rtol=1e-6) and torch.allclose(var_g.double(), exact_var, rtol=1e-4)
    var_g.sum().backward()
    assert torch.allclose(leaf.grad, 2 * (leaf - mean_g) / (9 * 11), atol=1e-4)


def test_deepened_network_computes_the_same_image_and_its_new_blocks_learn():
    net = _net(Architecture((4, 6, 8), 2, 3)).float()
    x = torch.rand(1, 3, 36, 44)
    weights = net.style_weights([0.2, 0.5, 0.3])
    deep = deepened(net, 4, torch.Generator().manual_seed(0))
    assert deep.arch == Architecture((4, 6, 8), 4, 3)
    assert torch.allclose(deep(x, weights), net(x, weights), atol=1e-6)
    # the upsampling layers after the blocks are the old ones, moved along
    assert torch.equal(deep.convs[-1].conv.weight, net.convs[-1].conv.weight)
    assert torch.equal(deep.norms[-1].scale, net.norms[-1].scale)
    # a new block adds nothing yet, but its last scale has a gradient, so training opens it
    deep(x, weights).square().mean().backward()
    new_second = deep.norms[3 + 2 * 2 + 1]
    assert torch.equal(new_second.scale.detach(), torch.zeros(3, 8)) and new_second.scale.grad.abs().sum() > 0
    with pytest.raises(PainterlyError, match="fewer than the model's 2 residual blocks"):
        deepened(net, 1, torch.Generator())


def test_training_with_deepen_grows_the_initial_model(tmp_path, photos, tiny_vgg):
    train([_style()], photos, tmp_path / "a.safetensors", _config(steps=10), extractor=tiny_vgg, style_names=["s"])
    info = train([_style()], photos, tmp_path / "b.safetensors", _config(steps=3, deepen=4),
                 init=tmp_path / "a.safetensors", extractor=tiny_vgg, style_names=["s"])
    net, meta = load_model(tmp_path / "b.safetensors")
    assert net.arch.residual_blocks == 4 and meta["training"]["residual_blocks"] == 4
    assert info["log"][0]["total"] == pytest.approx(
        train([_style()], photos, tmp_path / "c.safetensors", _config(steps=1),
              init=tmp_path / "a.safetensors", extractor=tiny_vgg, style_names=["s"])["log"][0]["total"], rel=1e-4)
    with pytest.raises(PainterlyError, match="deepen grows a trained model: give it with --init"):
        train([_style()], photos, tmp_path / "d.safetensors", _config(steps=1, deepen=4), extractor=tiny_vgg, style_names=["s"])


def test_network_method_through_the_api(tmp_path):
    path = save_model(tmp_path / "m.safetensors", _net(), {"styles": ["a", "b", "c"]})
    content = torch.rand(1, 3, 40, 60)
    out = painterly.stylize(content, method="network", model=str(path), size=60, style_weights=(0, 1, 0),
                            precision="fp32")
    expected = _net()(content, _net().style_weights([0, 1, 0])).clamp(0, 1)
    got = torch.from_numpy(np.asarray(out, dtype=np.float32) / 255).permute(2, 0, 1)
    assert (got - expected[0]).abs().max() < 0.03
    with pytest.raises(PainterlyError, match="style weights have 2 values for a model of 3"):
        painterly.stylize(content, method="network", model=str(path), size=60, style_weights=(1, 0))
    masks = [torch.ones(1, 1, 40, 60)] * 3
    def stop(info):
        raise painterly.StopRun

    stopped = painterly.stylize(content, method="network", model=str(path), size=60, style_weights=(0, 1, 0),
                                precision="fp32", callback=stop)
    whole = painterly.stylize(content, method="network", model=str(path), size=60, style_weights=(0, 1, 0),
                              precision="fp32")
    # a one-pass method finishes its pass: half a picture is no picture
    assert "stopped_early" not in stopped.info and np.array_equal(np.asarray(stopped), np.asarray(whole))
    for check in (painterly.preflight, painterly.stylize):  # preflight refuses what the run would
        with pytest.raises(PainterlyError, match="style masks .* take no style-weights"):
            check(content, method="network", model=str(path), size=60, style_weights=(0, 1, 0), style_masks=masks)
        with pytest.raises(PainterlyError, match=r"^2 style mask\(s\) for a model of 3 style\(s\)$"):
            check(content, method="network", model=str(path), size=60, style_masks=masks[:2])


def test_a_model_file_is_read_once_while_it_is_unchanged(tmp_path, monkeypatch):
    """A video's frames share one Session, and later runs in the process the prepared network: the file
    is read once, not once per frame or run; a file written anew is read again, with its own weights."""
    import painterly.nets.io as io
    from painterly.api import get_method, make_config
    from painterly.driver import Session

    path = save_model(tmp_path / "m.safetensors", _net(), {"styles": ["a", "b", "c"]})
    reads = []
    monkeypatch.setattr(io, "load_model", lambda p: reads.append(p) or load_model(p))
    config = make_config("network", model=str(path), size=32, precision="fp32")
    session = Session(get_method("network"), config, [])
    frames = [torch.rand(1, 3, 24, 32) for _ in range(3)]
    outs = [session.run(f) for f in frames]
    again = Session(get_method("network"), config, []).run(frames[0])
    assert len(reads) == 1 and torch.equal(again, outs[0])
    saved = load_model(path)[0].float()
    assert torch.allclose(outs[2], saved(frames[2]).clamp(0, 1), atol=1e-4)  # the third frame by its own input
    save_model(path, _net(seed=1), {"styles": ["a", "b", "c"]})  # retrained: the same name, other weights
    new = Session(get_method("network"), config, []).run(frames[0])
    assert len(reads) == 2
    assert torch.allclose(new, load_model(path)[0].float()(frames[0]).clamp(0, 1), atol=1e-4)
    assert (new - outs[0]).abs().max() > 1e-3


def test_the_resume_line_of_an_interrupted_training_is_quoted_for_a_shell():
    import shlex

    from painterly.cli_train import resume_command

    words = ["my style.jpg", "--photos", "holiday photos", "-o", "out.safetensors"]
    line = resume_command("train", words)
    assert shlex.split(line) == ["painterly", "train", *words, "--resume"]
    assert shlex.split(resume_command("train", [*words, "--resume"])).count("--resume") == 1


def test_train_and_models_and_model_commands(tmp_path, photos, capsys, monkeypatch):
    from painterly import cli

    style = tmp_path / "style.png"
    Image.fromarray((np.asarray(_style()[0].permute(1, 2, 0)) * 255).astype(np.uint8)).save(style)
    model = tmp_path / "m.safetensors"
    monkeypatch.setattr("painterly.training.FeatureExtractor.vgg19",
                        lambda **kw: FeatureExtractor.random(seed=0, last_layer="relu5_1", precision="fp32"))
    code = cli.main(["train", str(style), "--photos", str(photos), "-o", str(model), "--steps", "4", "--batch", "1",
                     "--crop", "32", "--widths", "4,8,8", "--residual-blocks", "1", "--preview-every", "2",
                     "--precision", "fp32", "-q"])
    assert code == 0, capsys.readouterr().err
    assert model.exists() and (tmp_path / "m.preview.png").exists() and (tmp_path / "m.loss.png").exists()
    assert not (tmp_path / "m.ckpt").exists()
    capsys.readouterr()
    assert cli.main(["models", str(model)]) == 0
    assert "m: 1 style(s) (style)" in capsys.readouterr().out
    (tmp_path / "bad.safetensors").write_text("not a model")
    assert cli.main(["models", str(tmp_path / "bad.safetensors"), str(model)]) == 2  # a bad file, then a good one
    listed = capsys.readouterr()
    assert "m: 1 style(s) (style)" in listed.out and listed.err.count("\n") == 1 and "bad.safetensors" in listed.err
    content = tmp_path / "c.png"
    Image.fromarray((np.random.default_rng(1).random((30, 40, 3)) * 255).astype(np.uint8)).save(content)
    # --model alone selects the network method: no STYLE needed
    assert cli.main([str(content), "--model", str(model), "-o", str(tmp_path / "out.png"), "--size", "40", "-q",
                     "--log"]) == 0
    assert Image.open(tmp_path / "out.png").size == (40, 30)
    # one pass: its step is logged (with its time), but there is no loss to draw a curve of
    assert (tmp_path / "out.json").exists() and not (tmp_path / "out.loss.png").exists()
    # bad input: one line, exit 2, nothing written
    from painterly.checkpoint import Checkpointer

    saved = Checkpointer(tmp_path / "run.ckpt", seconds=None)
    saved.start("an image run")
    saved = saved.save({"step": 1})  # said to be a checkpoint, not "neither a network nor a decoder"
    for argv, fragment in ((["train", str(style), "--photos", str(tmp_path / "none"), "-o", str(tmp_path / "x.safetensors")],
                            "does not exist"),
                           (["train", str(style), "--photos", str(photos), "-o", str(tmp_path / "x.png")], ".safetensors"),
                           ([str(content), "--model", str(tmp_path / "nope.safetensors"), "-o", str(tmp_path / "o.png")],
                            "does not exist"),
                           (["models", str(content)], "neither a painterly style network nor a decoder"),
                           (["models", str(saved)], "run.ckpt' is a checkpoint (a run's saved state), not a model "
                                                    "file: --resume continues the run that saved it"),
                           ([str(content), str(style), "--model", str(model), "-o", str(tmp_path / "o.png")],
                            "takes no style images"),
                           ([str(content), "--model", str(model), "--preserve-color", "histogram", "-o",
                             str(tmp_path / "o.png")], "use luminance"),
                           ([str(content), "--model", str(model), "--seed", "3", "-o", str(tmp_path / "o.png")],
                            "--seed (gatys, strotss), --model (network)"),  # one pass: nothing drawn at random
                           ([str(content), "--model", str(model), "--method", "network", "--max-time", "9", "-o",
                             str(tmp_path / "o.png")], "--max-time does not apply to --method network"),
                           ([str(content), "--model", str(model), "--save-every", "1", "--resume", "-o",
                             str(tmp_path / "o.png")], "--save-every, --resume: network is one forward pass"),
                           ([str(content), "--model", str(model), "--checkpoint", str(tmp_path / "c.ckpt"), "-o",
                             str(tmp_path / "o.png")], "--checkpoint: network is one forward pass"),
                           (["train", str(style), "--photos", str(photos), "--style-layers", "relu2_1,relu9_1", "-o",
                             str(tmp_path / "x.safetensors")], "unknown style layer 'relu9_1'")):
        assert cli.main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and fragment in err[0], err
    assert not (tmp_path / "x.safetensors").exists() and not (tmp_path / "o.png").exists()


def test_bundled_names_stand_for_their_files_and_the_wrong_kind_of_file_is_named(tmp_path, capsys):
    """What painterly models lists by name is taken by name everywhere (describe, --init, --extend,
    --decoder); a bare name that is nothing lists the bundled ones; a decoder given as a network (and
    the other way round) says what it is and where it goes."""
    from painterly import cli
    from painterly.nets.io import DECODERS, MODELS, decoder_path, load_decoder, model_path

    assert model_path("starry_night") == MODELS / "starry_night.safetensors"
    assert decoder_path("adain") == DECODERS / "adain.safetensors"
    assert model_path(str(tmp_path / "mine.safetensors")) == tmp_path / "mine.safetensors"  # a path stays a path
    with pytest.raises(PainterlyError, match=r"no bundled model 'nosuch' \(bundled: four_paintings, starry_night\)"):
        model_path("nosuch")
    with pytest.raises(PainterlyError, match="is a painterly decoder, not a style network: give it with --decoder"):
        load_model(DECODERS / "adain.safetensors")
    with pytest.raises(PainterlyError, match="is a painterly style network, not a decoder: give it with --model"):
        load_decoder(MODELS / "starry_night.safetensors")
    assert cli.main(["models", "starry_night", "adain"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("starry_night: 1 style(s)") and out[1].startswith("adain: decoder for --method adain")


def test_forced_tiles_use_whole_image_statistics(tmp_path, monkeypatch):
    """With --tile-size forced, each tile is normalised with the whole image's statistics and run with
    the picture around it that the network's reach takes in: the whole-image picture to the 8-bit
    rounding (tiles run alone differed along their borders by up to 106/255 at 256 px), where tiles
    normalised with their own statistics differ everywhere and show seams."""
    import painterly.methods.feedforward as feedforward
    from painterly.tiling import Tiling, seam_ratio, tile_borders

    net = _net(Architecture((6, 8, 12), 2, 1))
    path = save_model(tmp_path / "m.safetensors", net, {"styles": ["a"]})
    g = torch.Generator().manual_seed(0)
    content = torch.nn.functional.interpolate(torch.rand(1, 3, 12, 16, generator=g), size=(120, 160), mode="bilinear")
    common = dict(method="network", model=str(path), size=160, precision="fp32")
    pixels = lambda **kw: np.asarray(painterly.stylize(content, **common, **kw), dtype=np.float64) / 255
    border = tile_borders((120, 160), Tiling(80, 20, 1))
    seams = lambda a: seam_ratio(torch.from_numpy(a).permute(2, 0, 1).float(), border)
    whole, tiled = pixels(), pixels(tile_size=80, tile_overlap=20)
    own = feedforward.Network.targets
    monkeypatch.setattr(feedforward.Network, "targets",
                        lambda self, run, k, scale, style, box: (own(self, run, k, scale, style, box)[0], None, None))
    per_tile = pixels(tile_size=80, tile_overlap=20)
    # tiles on the whole image's stride-4 grid, with its statistics and the reach around them: the whole picture
    assert np.abs(whole - tiled).max() <= 1 / 255 + 1e-9
    assert np.abs(whole - per_tile).mean() > 0.01
    assert seams(tiled) < seams(per_tile) and seams(tiled) < 1.15


@pytest.mark.parametrize("size", [(120, 160), (123, 157)])
def test_tiles_with_style_masks_give_the_whole_pass(tmp_path, size):
    """A mix per pixel (style masks) is read on the padded picture's grid by the whole pass and cut by
    each tile on that grid: tiles give the whole picture to the 8-bit rounding, at odd sizes too (each
    tile stretched its own piece of the map: up to 255/255 off along the masks' edge)."""
    net = _net(Architecture((6, 8, 12), 2, 2))
    torch.manual_seed(0)
    for p in net.parameters():
        p.data.normal_(0, 0.3)
    path = save_model(tmp_path / "m.safetensors", net, {"styles": ["a", "b"]})
    h, w = size
    content = F.interpolate(torch.rand(1, 3, 12, 16, generator=torch.Generator().manual_seed(0)), size=size,
                            mode="bilinear")
    left = torch.zeros(1, 1, h, w)
    left[..., :w // 2] = 1
    common = dict(model=str(path), size=max(size), precision="fp32", style_masks=[left, 1 - left])
    whole_picture = painterly.stylize(content, **common)
    tiled_picture = painterly.stylize(content, tile_size=80, tile_overlap=20, **common)
    whole, tiled = np.asarray(whole_picture, dtype=np.int16), np.asarray(tiled_picture, dtype=np.int16)
    assert np.abs(whole - tiled).max() <= 1
    plan = painterly.plan(size, method="network", model=str(path), size=max(size), tile_size=80, tile_overlap=20)
    assert "tiles" not in whole_picture.info and tiled_picture.info["tiles"] == plan.scales[-1].tiling.tile_count(
        plan.tiled_areas[-1]) > 1  # what the command line's last line says


@pytest.mark.parametrize("name,styles", [("starry_night", 1), ("four_paintings", 4)])
def test_bundled_models_load_by_name_and_stylise(name, styles, capsys):
    from painterly import cli

    assert name in [p.stem for p in painterly.bundled_models()]
    content = torch.rand(1, 3, 48, 64, generator=torch.Generator().manual_seed(0))
    weights = None if styles == 1 else tuple(float(i == styles - 1) for i in range(styles))
    out = _array_of(painterly.stylize(content, model=name, size=64, style_weights=weights))
    assert out.shape == (48, 64, 3) and np.abs(out - content[0].permute(1, 2, 0).numpy()).mean() > 0.05
    assert cli.main(["models"]) == 0
    listed = capsys.readouterr().out
    assert f"{name}: {styles} style(s)" in listed
    # the bundled decoders are listed after the networks, each with the method and level it serves
    assert "\nadain: decoder for --method adain, level relu4_1, inside a 16 px reflected margin; " in listed
    assert "\nwct_relu4_1: decoder for --method wct, level relu4_1; " in listed
    net, meta = painterly.load_model(name)  # by name, as stylize takes it
    assert net.arch.styles == styles and len(meta["styles"]) == styles
    with pytest.raises(PainterlyError, match="model must be a name or a file path, got TransformerNet"):
        painterly.stylize(content, model=net, size=64)


def _array_of(image):
    return np.asarray(image, dtype=np.float32) / 255


def test_temporal_training_makes_the_network_consistent_under_motion(tmp_path, photos, tiny_vgg):
    """Trained with the synthetic-motion temporal loss, the network's output of a moved photo is closer
    to its moved output than that of the same network trained without it (same photos, steps, seed)."""
    from painterly.flow import move, random_motion

    errors = {}
    for weight in (0.0, 1.0):
        info = train([_style()], photos, tmp_path / f"t{weight:g}.safetensors",
                     _config(steps=30, temporal_weight=weight), extractor=tiny_vgg, style_names=["blue"])
        assert ("temporal" in info["log"][0]) == (weight > 0)
        net, _ = load_model(tmp_path / f"t{weight:g}.safetensors")
        photo = torch.from_numpy(np.asarray(Image.open(photos / "nested" / "p1.png"), dtype=np.float32) / 255)
        photo = photo.permute(2, 0, 1)[None].expand(4, -1, -1, -1)
        grid = random_motion(4, tuple(photo.shape[-2:]), torch.Generator().manual_seed(5))
        with torch.no_grad():
            moved_photo, inside = move(photo, grid)
            moved_out, _ = move(net(photo), grid)
            errors[weight] = float((inside * (net(moved_photo) - moved_out) ** 2).mean())
    assert errors[1.0] < 0.7 * errors[0.0], errors


def test_random_motion_is_a_known_flow():
    """The motion grid moves a picture as the affine map it encodes: a pure shift moves pixels by it."""
    from painterly.flow import move, random_motion

    g = torch.Generator().manual_seed(0)
    grid = random_motion(3, (20, 30), g, shift=0.1, zoom=0.0, turn_degrees=0.0)
    image = torch.rand(3, 3, 20, 30)
    moved, inside = move(image, grid)
    dx = (grid[:, 0, 0, 0] - grid[:, 0, 1, 0]).abs()  # x spacing is unchanged by a pure shift
    assert torch.allclose(dx, torch.full_like(dx, 2 / 30), atol=1e-5)
    assert 0.5 < float(inside.mean()) < 1.0  # some pixels came in from outside the frame


def test_reflect_pad_matches_f_pad_and_stays_in_bf16_under_autocast():
    """The same values and gradient as F.pad's reflection; under CPU autocast a bf16 map stays bf16
    (F.pad's goes to float32, a copy up and a copy back down per layer) and channels-last stays so."""
    from painterly.nets.padding import reflect_pad

    x = torch.randn(2, 5, 9, 11, requires_grad=True)
    for rows, cols in ((1, 1), (4, 4), (0, 2)):
        ours = reflect_pad(x, rows, cols)
        theirs = F.pad(x, (cols, cols, rows, rows), mode="reflect")
        assert torch.equal(ours, theirs)
        weights = torch.randn_like(ours)
        assert torch.equal(torch.autograd.grad((ours * weights).sum(), x)[0],
                           torch.autograd.grad((theirs * weights).sum(), x)[0])
    half = x.detach().bfloat16().contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert F.pad(half, (1, 1, 1, 1), mode="reflect").dtype == torch.float32  # what it avoids
        padded = reflect_pad(half, 1, 1)
    assert padded.dtype == torch.bfloat16 and padded.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(padded.float(), F.pad(half.float(), (1, 1, 1, 1), mode="reflect"))


def test_a_whole_image_pass_reports_each_layer_and_stops_between_layers(tmp_path):
    """A forward pass over a whole image is one step per layer: a bar that moves at print sizes, and
    a callback that raises (a cancelled web job, Ctrl-C) stops the pass at the next layer."""
    path = save_model(tmp_path / "m.safetensors", _net(), {"styles": ["a", "b", "c"]})
    content = torch.rand(1, 3, 24, 32)
    layers = len(_net().convs)
    seen = []
    out = painterly.stylize(content, method="network", model=str(path), size=32, precision="fp32", callback=seen.append)
    assert [(i.iteration, i.iterations) for i in seen] == [(n, layers) for n in range(1, layers + 1)]
    assert all(i.losses == {} for i in seen) and [i.step for i in seen] == list(range(1, layers + 1))
    assert torch.allclose(seen[0].preview_tensor(), content, atol=1e-6)  # before the last layer: the photo
    assert np.array_equal(np.asarray(seen[-1].preview()), np.asarray(out))  # the last: the result

    class Cancelled(Exception):
        pass

    def cancel_at_third(info):
        seen.append(info)
        if info.iteration == 3:
            raise Cancelled

    seen.clear()
    with pytest.raises(Cancelled):
        painterly.stylize(content, method="network", model=str(path), size=32, precision="fp32", callback=cancel_at_third)
    assert len(seen) == 3


@pytest.mark.parametrize("cell", [4, 24, 1000])
def test_statistics_found_cell_by_cell_are_the_whole_images(cell):
    """A tiled run's statistics in bounded memory: each layer's (mean, var) from cells run with their
    reach around them equal the whole-image pass's at an odd size (to float rounding for one mix of
    styles; nearly for a smooth per-pixel mix, whose coarser layers resize each cell's own crop)."""
    net = _net(Architecture((6, 8, 12), 2, 2))
    x = torch.rand(1, 3, 43, 57)
    assert net.reach() == 4 + 1 + 2 + 4 * 4 + 3 + 2  # each convolution's padding on the grid it reads
    ramp = torch.linspace(0, 1, 57).view(1, 1, 1, 57).expand(1, 1, 43, 57)
    for weights, tol in ((net.style_weights([0.3, 0.7]), 1e-5), (net.style_weights(torch.cat([ramp, 1 - ramp], 1)), 2e-3)):
        whole: list = []
        with torch.no_grad():
            net.run_banded(x, weights, 1000, None, whole)
        cells = net.statistics_in_cells(x, weights, cell, 1000)
        assert len(cells) == len(whole) == len(net.norms)
        for (m, v), (cm, cv) in zip(whole, cells):
            assert torch.allclose(m, cm, atol=tol) and torch.allclose(v, cv, rtol=100 * tol, atol=tol)


def test_a_tiled_pass_reports_its_statistics_cells_then_its_tiles(tmp_path):
    """The statistics of a tiled run (about 10x one whole pass) move the bar too: one step per cell
    per layer, then one per tile, all under one total."""
    net = _net(Architecture((6, 8, 12), 2, 1))
    path = save_model(tmp_path / "m.safetensors", net, {"styles": ["a"]})
    seen = []
    painterly.stylize(torch.rand(1, 3, 120, 160), method="network", model=str(path), size=160, precision="fp32",
                      tile_size=80, tile_overlap=20, callback=seen.append)
    total = seen[-1].iterations
    assert [i.iteration for i in seen] == list(range(1, total + 1)) and {i.iterations for i in seen} == {total}
    tiles = len(painterly.plan((120, 160), method="network", model=str(path), size=160, tile_size=80,
                               tile_overlap=20).scales[-1].tiling.boxes((120, 160), 0))
    assert (total - tiles) % len(net.norms) == 0 and total > tiles  # cells x layers, then the tiles


def test_the_plan_of_a_network_counts_its_own_convolutions():
    """--dry-run for a network: one pass (not '1 iterations'), timed by the network's multiply-adds (VGG
    plays no part), so 4x the pixels take 4x the time and a wider network longer."""
    small = painterly.plan((384, 512), model="starry_night", size=512, precision="fp32")
    large = painterly.plan((768, 1024), model="starry_night", size=1024, precision="fp32")
    slim = painterly.plan((768, 1024), model="four_paintings", size=1024, precision="fp32")
    assert large.seconds == pytest.approx(4 * small.seconds) and large.seconds > slim.seconds > 0
    # starry_night's 117216 multiply-adds a pixel at the measured fp32 rate
    assert large.seconds == pytest.approx(2 * 117216 * 768 * 1024 / 220e9, rel=1e-3)
    text = large.describe()
    assert "one pass" in text and "iterations" not in text and "VGG19" not in text


def test_a_tiled_pass_is_estimated_from_its_cells_and_tiles_not_a_fixed_factor():
    """A fixed 10 whole passes held for 1024 px tiles and was a third of what 200 px tiles took (768 px: 25.5 s
    measured, 3.6 s estimated): the statistics' cells and the tiles are read with the network's reach around
    them, which small tiles pay for many times over."""
    from painterly.methods.feedforward import tiled_passes
    from painterly.schedule import plan_tiling

    recipe = painterly.get_method("network")
    with torch.device("meta"):
        net = TransformerNet(recipe.architecture(painterly.make_config("network", None, model="starry_night")))
    large = tiled_passes(net, (1536, 2048), plan_tiling(1024, None, 1))
    small = tiled_passes(net, (576, 768), plan_tiling(200, None, 1))
    assert 10 < large < 20  # measured 15.6 whole passes (session 33)
    assert small > 3 * large  # measured 71 against 15.6
    plan = painterly.plan((576, 768), method="network", model="starry_night", size=768, tile_size=200,
                          precision="fp32")
    whole = painterly.plan((576, 768), method="network", model="starry_night", size=768, precision="fp32")
    assert plan.seconds == pytest.approx(whole.seconds * small, rel=1e-6)
