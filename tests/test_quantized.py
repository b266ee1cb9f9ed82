"""int8 VGG encoders (painterly.quantized): close to fp32, deterministic, scaled per image, and only
where they can run (no gradient, the CPU)."""

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import painterly
import painterly.cli as cli
from painterly import hardware
from painterly.errors import PainterlyError
from painterly.features import FeatureExtractor
from painterly.hardware import resolve_precision
from painterly.image import as_tensor, resize
from painterly.quantized import Int8Convolutions, supported

pytestmark = pytest.mark.skipif(not supported(), reason="this torch has no x86 int8 kernels")

EXAMPLES = Path(__file__).resolve().parent.parent / "painterly" / "examples"
LEVELS = ["relu1_1", "relu2_1", "relu3_1", "relu4_1"]


def _photo(size):
    return resize(as_tensor(EXAMPLES / "tubingen.jpg"), size)


@pytest.fixture(scope="module")
def encoders():
    fp32 = FeatureExtractor.vgg19(pooling="max", last_layer="relu4_1")
    return fp32, FeatureExtractor.vgg19(pooling="max", last_layer="relu4_1", precision="int8")


def test_int8_features_close_to_fp32(encoders):
    """The real VGG19 on a photo: each level within a few percent of fp32, and the channel means and
    standard deviations that AdaIN and WCT read closer still; yet not equal (it ran in int8)."""
    fp32, int8 = encoders
    x = _photo((128, 192))
    a, b = fp32(x, LEVELS), int8(x, LEVELS)
    for layer in LEVELS:
        assert b[layer].dtype == torch.float32 and b[layer].shape == a[layer].shape
        rel = ((b[layer] - a[layer]).norm() / a[layer].norm()).item()
        means = ((b[layer].mean((2, 3)) - a[layer].mean((2, 3))).norm() / a[layer].mean((2, 3)).norm()).item()
        stds = ((b[layer].std((2, 3)) - a[layer].std((2, 3))).norm() / a[layer].std((2, 3)).norm()).item()
        assert 1e-4 < rel < 0.06, (layer, rel)
        assert means < 0.03 and stds < 0.03, (layer, means, stds)


def test_int8_is_deterministic(encoders):
    _, int8 = encoders
    x = _photo((64, 96))
    assert torch.equal(int8(x, ["relu3_1"])["relu3_1"], int8(x, ["relu3_1"])["relu3_1"])


def test_each_layer_is_scaled_by_its_largest_value_at_a_quarter_of_the_side(encoders):
    """The calibration pass is the fp32 network on the image area-averaged to a quarter of its side, and
    each ReLU's int8 output is clipped at that pass's largest value."""
    fp32, int8 = encoders
    x = _photo((128, 192))
    caffe = int8.preprocess(x)
    tops = Int8Convolutions._calibrate(caffe, int8.names, int8.layers)
    quarter = fp32(F.interpolate(x, size=(32, 48), mode="area"), LEVELS)
    for layer in LEVELS:
        assert tops[layer] == pytest.approx(quarter[layer].max().item(), rel=1e-4)
    full = int8(x, LEVELS)
    for layer in LEVELS:
        assert full[layer].max().item() <= tops[layer] * (1 + 1e-5)
    # a small image is calibrated on itself
    small = int8.preprocess(_photo((64, 96)))
    tops_small = Int8Convolutions._calibrate(small, int8.names, int8.layers)
    assert tops_small["relu1_1"] == pytest.approx(fp32(_photo((64, 96)), ["relu1_1"])["relu1_1"].max().item(), rel=1e-4)


def test_int8_refuses_gradients_and_pre_relu_layers():
    int8 = FeatureExtractor.random(last_layer="relu2_1", precision="int8")
    with pytest.raises(PainterlyError, match="no gradient"):
        int8(torch.rand(1, 3, 16, 16, requires_grad=True), ["relu2_1"])
    with pytest.raises(PainterlyError, match="after the ReLU"):
        int8(torch.rand(1, 3, 16, 16), ["conv2_1"])


def test_resolve_precision_int8(monkeypatch):
    """auto takes int8 only for an encoder that needs no gradient, where int8 pays; an explicit int8
    elsewhere (optimising, training, no encoder, a GPU) is an error."""
    monkeypatch.setattr(hardware, "bf16_pays", lambda device="cpu": False)
    for pays in (True, False):
        monkeypatch.setattr(hardware, "int8_pays", lambda device="cpu", pays=pays: pays)
        assert resolve_precision("auto", "cpu", int8_ok=True) == ("int8" if pays else "fp32")
        assert resolve_precision("auto", "cpu", int8_ok=False) == "fp32"
    assert resolve_precision("int8", "cpu", int8_ok=True) == "int8"
    with pytest.raises(PainterlyError, match="one forward pass"):
        resolve_precision("int8", "cpu")
    with pytest.raises(PainterlyError, match="CPU only"):
        resolve_precision("int8", "cuda", int8_ok=True)


def test_int8_probe_measures_a_speedup_where_vnni_is():
    """The probe's two convolutions run; where the CPU has VNNI int8 is at least not slower."""
    speedup = hardware.conv_int8_speedup()
    assert speedup > 0
    if hardware.cpu_has_vnni():
        assert speedup > 1.0


def test_plans_resolve_int8_per_method(monkeypatch):
    monkeypatch.setattr(hardware, "int8_pays", lambda device="cpu": True)
    monkeypatch.setattr(hardware, "bf16_pays", lambda device="cpu": False)
    assert painterly.plan((64, 64), method="adain").precision == "int8"
    assert painterly.plan((64, 64), method="wct").precision == "int8"
    assert painterly.plan((64, 64), method="network", model="starry_night").precision == "int8"
    assert painterly.plan((64, 64), method="gatys").precision == "fp32"
    with pytest.raises(PainterlyError, match="one forward pass"):
        painterly.plan((64, 64), method="gatys", precision="int8")


def test_cli_int8_for_an_optimising_method_is_one_line(tmp_path, capsys):
    image = tmp_path / "c.png"
    Image.fromarray(np.full((16, 16, 3), 128, np.uint8)).save(image)
    code = cli.main([str(image), str(image), "--method", "gatys", "--precision", "int8", "-o", str(tmp_path / "o.png")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and err[0].startswith("painterly: error: ") and "int8" in err[0]
    assert not (tmp_path / "o.png").exists()


@pytest.mark.parametrize("method", ["adain", "wct"])
def test_int8_paints_nearly_the_fp32_picture(method):
    """End to end through the public API with the real VGG19 and the bundled decoders at 128 px: the int8
    picture is the fp32 one up to quantisation noise (measured 39 dB PSNR for AdaIN, 29 for WCT with its
    four levels), far nearer to it than the picture at strength 0 is (16 and 12 dB)."""
    def picture(**options):
        image = painterly.stylize(EXAMPLES / "tubingen.jpg", EXAMPLES / "starry_night.jpg", method=method,
                                  size=128, **options)
        return np.asarray(image, np.float64)

    def psnr(a, b):
        return 10 * np.log10(255 ** 2 / ((a - b) ** 2).mean())

    fp32, int8 = picture(precision="fp32"), picture(precision="int8")
    unstyled = picture(precision="fp32", strength=0)
    assert not np.array_equal(fp32, int8)
    assert psnr(fp32, int8) > 25 and psnr(fp32, int8) > psnr(fp32, unstyled) + 10


def _psnr(a, b):
    return 10 * np.log10(255 ** 2 / ((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2).mean())


def test_network_in_int8_paints_nearly_the_fp32_picture():
    """The bundled starry_night at 160 px: its residual blocks in int8 give the fp32 picture up to noise
    (about 40 dB at 1024 px), whole and in tiles (each tile calibrated on itself, against fp32 tiles)."""
    photo = EXAMPLES / "tubingen.jpg"
    fp32 = painterly.stylize(photo, model="starry_night", size=160, precision="fp32")
    int8 = painterly.stylize(photo, model="starry_night", size=160, precision="int8")
    tiled = {p: painterly.stylize(photo, model="starry_night", size=160, precision=p, tile_size=96)
             for p in ("fp32", "int8")}
    content = resize(as_tensor(photo), tuple(np.asarray(fp32).shape[:2]))
    unstyled = (content[0].permute(1, 2, 0).numpy() * 255).round()
    assert not np.array_equal(np.asarray(fp32), np.asarray(int8))
    assert _psnr(fp32, int8) > 30 and _psnr(fp32, int8) > _psnr(fp32, unstyled) + 15
    assert _psnr(tiled["fp32"], tiled["int8"]) > 30


def test_int8_trunk_quantises_the_residual_blocks_within_their_calibrated_ranges():
    """Only the residual blocks' convolutions are quantised; calibration records each one's input and
    output range on the quarter-size image, and their int8 outputs stay within those ranges."""
    from painterly.methods.feedforward import model_path
    from painterly.nets.io import load_model
    from painterly.nets.quantized_trunk import Int8Trunk

    net, _ = load_model(model_path("four_paintings"))
    net = net.float().to(memory_format=torch.channels_last)
    trunk = Int8Trunk(net)
    assert sorted(trunk.convs) == list(range(3, 3 + 2 * net.arch.residual_blocks))
    x = _photo((128, 160)).contiguous(memory_format=torch.channels_last)
    weights = net.style_weights([0.5, 0.5, 0, 0])
    trunk.calibrate(x, weights, None)
    assert sorted(trunk.ranges) == sorted(trunk.convs)
    seen = {}

    def watch(i, layer, padded, band_rows):
        y = trunk(i, layer, padded, band_rows)
        seen[i] = (y.min().item(), y.max().item())
        return y

    with torch.no_grad():
        out = net.run_banded(x, weights, 1 << 30, convs=watch)
        plain = net.run_banded(x, weights, 1 << 30)
    for i, (low, high) in seen.items():
        if i in trunk.convs:
            _, _, out_low, out_high = trunk.ranges[i]
            step = (max(out_high, 0) - min(out_low, 0)) / 255
            assert min(out_low, 0) - step <= low and high <= max(out_high, 0) + step
    assert 0 < (out - plain).abs().mean().item() < 0.02
    # a weight map per pixel is calibrated at the quarter size too
    mask = torch.zeros(1, 4, 128, 160)
    mask[:, 0, :, :80], mask[:, 1, :, 80:] = 1, 1
    trunk.calibrate(x, net.style_weights(mask), None)
    assert sorted(trunk.ranges) == sorted(trunk.convs)
