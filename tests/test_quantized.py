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
from painterly.quantized import supported

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


def test_fine_stripes_are_not_clipped(encoders):
    """2 px stripes: each layer ranges itself on the image's own convolutions (probed at a stride of 3),
    so relu4_1 stays within a few percent of fp32 (ranged on the image shrunk 4x it was 89% off)."""
    fp32, int8 = encoders
    columns = torch.arange(128)
    stripes = ((columns // 2) % 2).float().view(1, 1, 1, 128).expand(1, 3, 96, 128).contiguous()
    a, b = fp32(stripes, LEVELS), int8(stripes, LEVELS)
    for layer in LEVELS:
        rel = ((b[layer] - a[layer]).norm() / a[layer].norm()).item()
        assert rel < 0.06, (layer, rel)


def test_ranged_conv_finds_its_output_range(monkeypatch):
    """RangedConv against the fp32 convolution on a random input: close, and its range short of the true
    one only by the few outliers the probes miss (they see a ninth of the positions); at 7 bits where the
    CPU has no VNNI (or cannot tell)."""
    from painterly import quantized

    g = torch.Generator().manual_seed(0)
    conv = torch.nn.Conv2d(16, 24, 3, padding=1)
    with torch.no_grad():
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=g) / 12)
    x = torch.randn(1, 16, 40, 52, generator=g).contiguous(memory_format=torch.channels_last)
    expected = F.conv2d(x, conv.weight, conv.bias, padding=1)
    for vnni, levels in ((True, 255), (False, 127), (None, 127)):
        monkeypatch.setattr(quantized, "cpu_has_vnni", lambda vnni=vnni: vnni)
        assert quantized.activation_levels() == levels
        ranged = quantized.RangedConv(conv, False, levels)
        q = quantized.quantise(x, *quantized.extrema(x), levels)
        assert int(q.int_repr().max()) <= levels
        with torch.no_grad():
            out = ranged(q)
        assert int(out.int_repr().max()) <= levels
        got = out.dequantize()
        assert ((got - expected).norm() / expected.norm()).item() < (0.02 if levels == 255 else 0.04)
        assert got.max().item() > 0.8 * expected.max().item() and got.min().item() < 0.8 * expected.min().item()
        clipped = ((expected > got.max()) | (expected < got.min())).float().mean().item()
        assert clipped < 0.005, clipped


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


def test_int8_probe_runs():
    """The probe times both convolutions (what it finds depends on the machine, so only that it ran)."""
    speedup = hardware.conv_int8_speedup()
    assert 0 < speedup < float("inf")


def test_plans_resolve_int8_per_method(monkeypatch):
    monkeypatch.setattr(hardware, "int8_pays", lambda device="cpu": True)
    monkeypatch.setattr(hardware, "bf16_pays", lambda device="cpu": False)
    assert painterly.plan((64, 64), method="adain").precision == "int8"
    assert painterly.plan((64, 64), method="wct").precision == "int8"
    assert painterly.plan((64, 64), method="network", model="starry_night").precision == "int8"
    assert painterly.plan((64, 64), method="gatys").precision == "fp32"
    with pytest.raises(PainterlyError, match="one forward pass"):
        painterly.plan((64, 64), method="gatys", precision="int8")
    # refused where options are checked, so a batch refuses such a job before any work
    from painterly.api import make_config

    assert make_config("adain", precision="int8").precision == "int8"
    with pytest.raises(PainterlyError, match="one forward pass"):
        make_config("strotss", precision="int8")


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


def test_int8_trunk_runs_the_residual_blocks_in_int8_and_bands_change_nothing():
    """Only the residual blocks' convolutions are quantised; in bands of rows they give the whole layer's
    result (each band quantised over the whole input's range, so no int8 code moves: a moved code would
    shift the output by about the quantisation step, 1e-3 and more; float layers in small bands may round
    differently, 1e-6 on a Zen 4), close to fp32; and 2 px stripes are not clipped (ranged on the photo
    shrunk 4x they came out at 11 dB from fp32)."""
    from painterly.methods.feedforward import model_path
    from painterly.nets.io import load_model
    from painterly.nets.quantized import Int8Trunk

    net, _ = load_model(model_path("four_paintings"))
    net = net.float().to(memory_format=torch.channels_last)
    trunk = Int8Trunk(net)
    assert sorted(trunk.convs) == list(range(3, 3 + 2 * net.arch.residual_blocks))
    weights = net.style_weights([0.5, 0.5, 0, 0])
    columns = torch.arange(160)
    stripes = ((columns // 2) % 2).float().view(1, 1, 1, 160).expand(1, 3, 128, 160)
    for image in (_photo((128, 160)), stripes):
        x = image.contiguous(memory_format=torch.channels_last)
        with torch.no_grad():
            whole = net.run_banded(x, weights, 1 << 30, convs=trunk)
            banded = net.run_banded(x, weights, 7, convs=trunk)
            plain = net.run_banded(x, weights, 1 << 30)
        assert torch.allclose(whole, banded, rtol=0, atol=1e-5)
        assert _psnr(plain.clamp(0, 1) * 255, whole.clamp(0, 1) * 255) > 28
        assert not torch.equal(whole, plain)


@pytest.mark.parametrize("upsampled", [False, True])
def test_quint8_maps_are_padded_and_interleaved_by_their_codes_exactly(upsampled):
    """Between a decoder's int8 layers the maps stay quint8: padding (reflected, or replicated before an
    upsampling) and interleaving an upsampled layer's phases move the codes exactly, as the same steps on
    the float map would give them, and keep the map's scale."""
    from painterly.nets.decoder import padded_input
    from painterly.nets.polyphase import interleave_phases

    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 8, 9, 11, generator=g).contiguous(memory_format=torch.channels_last)
    q = torch.quantize_per_tensor(x, 0.01, 3, torch.quint8)
    for step in (lambda m: padded_input(m, upsampled), interleave_phases):
        coded = step(q)
        assert coded.is_quantized and (coded.q_scale(), coded.q_zero_point()) == (0.01, 3)
        assert coded.is_contiguous(memory_format=torch.channels_last)
        assert torch.equal(coded.dequantize(), step(q.dequantize()))


def test_int8_decoder_keeps_quint8_between_its_int8_layers(monkeypatch):
    """The bundled AdaIN decoder in int8: only its first int8 layer quantises a float32 map; every later
    one reads the quint8 map the one before wrote (no float32 pass, no new range), and the picture is the
    fp32 decoder's up to noise."""
    from painterly.nets import quantized
    from painterly.nets.io import load_decoder

    decoder, _ = load_decoder(Path(painterly.__file__).parent / "models" / "decoders" / "adain.safetensors")
    decoder = decoder.float().eval()
    runner = quantized.Int8Decoder(decoder)
    quantised, inputs = [], []
    original_quantise, original_call = quantized.quantise_ranged, quantized.RangedConv.__call__
    monkeypatch.setattr(quantized, "quantise_ranged",
                        lambda x, *a: quantised.append(x.shape) or original_quantise(x, *a))
    monkeypatch.setattr(quantized.RangedConv, "__call__",
                        lambda self, q: inputs.append(q.is_quantized) or original_call(self, q))
    features = torch.rand(1, 512, 12, 10, generator=torch.Generator().manual_seed(1)).mul(4)
    features = features.contiguous(memory_format=torch.channels_last)
    int8 = decoder.decode(features, runner).clamp(0, 1)
    fp32 = decoder.decode(features).clamp(0, 1)
    assert len(inputs) == len(runner.convs) == 7 and all(inputs)
    assert len(quantised) == 1
    assert _psnr(fp32 * 255, int8 * 255) > 30
