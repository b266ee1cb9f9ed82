"""AdaIN and WCT as methods (tiny random VGG and decoders), and decoder training."""

import dataclasses
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import painterly
from painterly import PainterlyError
from painterly.checkpoint import Checkpointer, Interrupted
from painterly.cli_train import describe_decoder
from painterly.decoder_training import (ADAIN_STYLE_LAYERS, DecoderTrainConfig, StyleCrops, colour_matched, train_decoder,
                                        turn_hues, widened_decoder)
from painterly.driver import run
from painterly.features import FeatureExtractor
from painterly.methods.wct import DEFAULT_STRENGTH, WctConfig
from painterly.nets.decoder import Decoder, DecoderArch
from painterly.nets.io import load_decoder, save_decoder
from painterly.transforms import Moments, WctMap, adain, batch_adain, instance_mean_std, wct

DIVISOR = 16


@pytest.fixture
def tiny_vgg(monkeypatch):
    vgg = FeatureExtractor.random(seed=0, pooling="max", last_layer="relu5_1", precision="fp32")
    monkeypatch.setattr("painterly.driver.FeatureExtractor.vgg19", lambda **kw: vgg)
    monkeypatch.setattr("painterly.decoder_training.FeatureExtractor.vgg19", lambda **kw: vgg)
    return vgg


def _decoder(tmp_path, level, seed=0, spread=0.5, margin=0):
    torch.manual_seed(seed)
    decoder = Decoder(DecoderArch(level, 1, DIVISOR, margin=margin))
    with torch.no_grad():  # mid-grey output with variation, as a trained decoder's (not clamped to 0 or 1)
        last = decoder.layers[-1].conv
        last.bias.fill_(0.5)
        last.weight.mul_(spread / (last.weight.abs().sum((1, 2, 3), keepdim=True) + 1e-6))
    path = tmp_path / f"{level}{'_margin' if margin else ''}.safetensors"
    save_decoder(path, decoder, {"method": None}, dtype=torch.float32)  # usable by AdaIN and WCT alike
    return path, decoder.eval()


def _images(seed=0):
    g = torch.Generator().manual_seed(seed)
    content = torch.rand(1, 3, 48, 64, generator=g)
    style = (torch.rand(1, 3, 48, 64, generator=g) * torch.tensor([1.0, 0.3, 0.2]).view(1, 3, 1, 1))
    return content, style


def _array(image):
    return np.asarray(image, dtype=np.float32) / 255


def test_a_decoder_file_is_prepared_once_while_it_is_unchanged(tmp_path):
    """Runs share a decoder read once per process; each gets its own copy of the metadata; a file written
    anew (a retrained decoder under the same name) is read again."""
    from painterly.nets.io import prepared_decoder

    path, _ = _decoder(tmp_path, "relu4_1")
    first, meta = prepared_decoder(path, "cpu", "fp32")
    meta["method"] = "changed"
    again, meta_again = prepared_decoder(path, "cpu", "fp32")
    assert again is first and meta_again["method"] is None
    assert prepared_decoder(path, "cpu", "bf16")[0].convs()[0].weight.dtype == torch.bfloat16
    _, retrained = _decoder(tmp_path, "relu4_1", seed=1)
    new, _ = prepared_decoder(path, "cpu", "fp32")
    assert new is not first and torch.equal(new.convs()[0].weight, retrained.convs()[0].weight)
    assert not torch.equal(new.convs()[0].weight, first.convs()[0].weight)


def test_adain_method_is_decode_of_the_transform_and_strength_mixes(tmp_path, tiny_vgg):
    path, decoder = _decoder(tmp_path, "relu4_1")
    content, style = _images()
    with torch.no_grad():
        c, s = tiny_vgg(content, ["relu4_1"])["relu4_1"], tiny_vgg(style, ["relu4_1"])["relu4_1"]
        expected = {a: decoder(adain(c, Moments.of(c), Moments.of(s), a)).clamp(0, 1) for a in (0.0, 1.0)}
    for a in (0.0, 1.0):  # the paper's AdaIN: no colour step
        out = painterly.stylize(content, style, method="adain", decoder=str(path), size=64, strength=a,
                                precision="fp32", color_match=0)
        got = _array(out).transpose(2, 0, 1)
        assert np.abs(got - expected[a][0].numpy()).max() <= 1 / 255 + 1e-6
    # by default the decoded colours move half way to the style's: a WCT of the pixels at 0.5
    decoded = expected[1.0]
    colours = wct(decoded, WctMap.between(Moments.of(decoded, full=True), Moments.of(style, full=True)), 0.5)
    out = painterly.stylize(content, style, method="adain", decoder=str(path), size=64, precision="fp32")
    assert np.abs(_array(out).transpose(2, 0, 1) - colours.clamp(0, 1)[0].numpy()).max() <= 1 / 255 + 1e-6
    # and strength 0 still returns the decoded content, colours untouched
    out = painterly.stylize(content, style, method="adain", decoder=str(path), size=64, precision="fp32", strength=0)
    assert np.abs(_array(out).transpose(2, 0, 1) - expected[0.0][0].numpy()).max() <= 1 / 255 + 1e-6


def test_a_decoder_trained_with_a_margin_decodes_inside_the_reflected_picture(tmp_path, tiny_vgg):
    """A decoder whose file says it was trained behind an 8 px margin (AdaIN's train-decoder --margin; the
    shared path runs any level's so): the picture is reflected 8 px beyond its edges, encoded, moved to the
    style's statistics (the whole reflected map's, as in training), decoded, and the inside kept. Tiles do
    the same over the reflected picture and come out close to the whole; the plan counts the reflection."""
    path, decoder = _decoder(tmp_path, "relu2_1", spread=5.0, margin=8)  # a picture of 0.42..0.53, unclamped
    plain, _ = _decoder(tmp_path, "relu2_1", spread=5.0)
    content, style = _images(6)
    with torch.no_grad():
        c = tiny_vgg(torch.nn.functional.pad(content, (8,) * 4, mode="reflect"), ["relu2_1"])["relu2_1"]
        s = tiny_vgg(style, ["relu2_1"])["relu2_1"]
        transformed = wct(c, WctMap.between(Moments.of(c, full=True), Moments.of(s, full=True)), 1.0)
        expected = decoder(transformed).clamp(0, 1)[..., 8:56, 8:72]
    config = WctConfig(levels=("relu2_1",), decoders=(str(path),), size=64, precision="fp32", strength=1.0)
    got = run(content, [style], config)
    assert got.shape == content.shape and torch.allclose(got, expected, atol=1e-5)
    without = run(content, [style], dataclasses.replace(config, decoders=(str(plain),)))
    spread = (got - got.mean((2, 3), keepdim=True)).abs().mean()
    assert (got - without).abs().mean() > 0.05 * spread  # the same weights without the margin paint another picture
    content = torch.nn.functional.interpolate(content, size=(93, 125), mode="bilinear")
    whole = run(content, [style], dataclasses.replace(config, size=125))
    tiled = run(content, [style], dataclasses.replace(config, size=125, tile_size=64, tile_overlap=16))
    assert whole.shape == tiled.shape == content.shape
    assert (whole - tiled).abs().mean() < 0.05 * spread
    options = dict(method="wct", levels=("relu2_1",), size=125, precision="fp32")
    plan = painterly.plan(content, decoders=(str(path),), **options)
    bare = painterly.plan(content, decoders=(str(plain),), **options)
    assert plan.seconds > bare.seconds and plan.peak_bytes > bare.peak_bytes  # the reflection costs too
    # --dry-run counts the tiles laid over the reflected picture, as the run lays them: 128 px needs three
    # 64 px tiles a row where the 112 px picture alone would need two
    tiled_plan = painterly.plan((93, 112), decoders=(str(path),), tile_size=64, tile_overlap=16,
                                **dict(options, size=112))
    tiling = tiled_plan.scales[0].tiling
    assert tiled_plan.tiled_areas == ((109, 128),)
    assert tiling.tile_count((109, 128)) == 6 > tiling.tile_count((93, 112)) == 4
    assert "6 tiles" in tiled_plan.describe()


def test_a_margin_is_capped_by_what_a_small_picture_can_reflect():
    """Reflection reaches at most one pixel less than the picture's side, kept on the level's stride grid;
    the run, --dry-run's time and the memory estimate all take the capped margin."""
    from painterly.methods.arbitrary import capped_margin

    assert capped_margin(16, (100, 80), 8) == 16
    assert capped_margin(32, (20, 30), 8) == 16
    assert capped_margin(16, (5, 9), 2) == 4
    assert capped_margin(8, (1, 9), 1) == 0
    from painterly.methods.arbitrary import ArbitraryMemory  # the memory estimate caps it alike

    def estimate(margin, size):
        return ArbitraryMemory(("relu4_1",), 4, margin=margin).scale_bytes(size, None, 1)

    assert estimate(32, (10, 12)) == estimate(9, (10, 12)) > estimate(0, (10, 12))
    assert estimate(32, (100, 80)) > estimate(16, (100, 80))


def test_a_margin_reflects_the_style_masks_with_the_picture(tmp_path, tiny_vgg):
    """A style per region behind a margin is the same weights without one run on the picture and its masks
    reflected by hand, cut back: the masks line up with the reflected picture (a region's edge off the
    centre, so a mask stretched to the bigger picture instead would move it)."""
    path, _ = _decoder(tmp_path, "relu2_1", spread=5.0, margin=8)
    plain, _ = _decoder(tmp_path, "relu2_1", spread=5.0)
    content, style = _images(7)
    left = torch.zeros(1, 1, 48, 64)
    left[..., :20] = 1
    masks = [left, 1 - left]
    styles = [style, style.flip(1)]
    config = WctConfig(levels=("relu2_1",), decoders=(str(path),), size=64, precision="fp32", strength=1.0)
    got = run(content, styles, config, style_masks=masks)

    def reflect(x):
        return torch.nn.functional.pad(x, (8,) * 4, mode="reflect")

    # the styles encoded at the size they are behind the margin (a style has the output's pixel count)
    bigger = dataclasses.replace(config, decoders=(str(plain),), size=80, style_scale=(48 * 64 / (64 * 80)) ** 0.5)
    by_hand = run(reflect(content), styles, bigger, style_masks=[reflect(m) for m in masks])[..., 8:56, 8:72]
    assert torch.allclose(got, by_hand, atol=1e-5)
    stretched = run(reflect(content), styles, bigger,
                    style_masks=[torch.nn.functional.interpolate(m, size=(64, 80)) for m in masks])[..., 8:56, 8:72]
    assert (got - stretched).abs().max() > 1e-3  # 3% of the picture's range; by hand: exactly equal


def test_the_colour_step_gives_the_style_colour_statistics(tmp_path, tiny_vgg):
    """color-match 1 moves the output's colour mean and covariance to the style's (times the strength: half
    way at 0.5 here, since a full one-level WCT would already give them); per region with masks."""
    path, _ = _decoder(tmp_path, "relu1_1")  # one convolution: a picture that varies with the photo
    content, style = _images(5)
    style = 0.1 + 0.5 * style  # colours the full match can reach without clipping

    def colour_stats(pixels):
        flat = pixels.reshape(-1, 3).astype(np.float64)
        return flat.mean(0), np.cov(flat.T, bias=True)

    base = dict(method="wct", levels=("relu1_1",), decoders=(str(path),), size=64, precision="fp32")
    target_mean, target_cov = colour_stats(style[0].permute(1, 2, 0).numpy())
    misses = []
    for match in (0.0, 0.5, 1.0):
        mean, cov = colour_stats(_array(painterly.stylize(content, style, color_match=match, **base)))
        misses.append((np.abs(mean - target_mean).max(), np.abs(cov - target_cov).max()))
    (mean0, cov0), (mean_half, _), (mean1, cov1) = misses
    assert mean0 > 0.2 and cov0 > 0.5 * np.abs(target_cov).max()   # the decoder alone: far from the palette
    assert abs(mean_half - mean0 / 2) < 0.01                          # half way
    assert mean1 < 0.01 and cov1 < 0.1 * np.abs(target_cov).max()    # the style's colour statistics
    left = torch.zeros(1, 1, 48, 64)
    left[..., :32] = 1
    blue = style.flip(1)  # the channels swapped: a different palette
    out = _array(painterly.stylize(content, [style, blue], style_masks=[left, 1 - left], color_match=1.0, **base))
    for half, painting in ((out[:, 4:28], style), (out[:, 36:60], blue)):  # away from the soft edge
        mean, _ = colour_stats(half)
        assert np.abs(mean - colour_stats(painting[0].permute(1, 2, 0).numpy())[0]).max() < 0.05


def test_wct_runs_its_levels_coarse_to_fine(tmp_path, tiny_vgg):
    (p2, d2), (p1, d1) = _decoder(tmp_path, "relu2_1", 1), _decoder(tmp_path, "relu1_1", 2)
    content, style = _images(1)
    with torch.no_grad():
        image = content
        for level, decoder in (("relu2_1", d2), ("relu1_1", d1)):
            c, s = tiny_vgg(image, [level])[level], tiny_vgg(style, [level])[level]
            m = WctMap.between(Moments.of(c, full=True), Moments.of(s, full=True))
            image = decoder(wct(c, m, DEFAULT_STRENGTH)).clamp(0, 1)
    out = painterly.stylize(content, style, method="wct", levels=("relu2_1", "relu1_1"),
                            decoders=(str(p2), str(p1)), size=64, precision="fp32")
    assert np.abs(_array(out).transpose(2, 0, 1) - image[0].numpy()).max() <= 1 / 255 + 1e-6


@pytest.mark.parametrize("h,w", [(45, 61), (33, 40)])
def test_any_size_comes_back_whole_and_in_place(tmp_path, tiny_vgg, h, w):
    path, decoder = _decoder(tmp_path, "relu2_1")
    content, style = _images(4)
    content = torch.nn.functional.interpolate(content, size=(h, w), mode="bilinear")
    out = painterly.stylize(content, style, method="wct", levels=("relu2_1",), decoders=(str(path),), size=w,
                            precision="fp32")
    assert out.size == (w, h)
    small, _ = _decoder(tmp_path, "relu4_1")
    with pytest.raises(PainterlyError, match="each side must be at least 16 px"):
        painterly.stylize(content[..., :12, :], style, method="adain", decoder=str(small), size=w, precision="fp32")
    deepest, _ = _decoder(tmp_path, "relu5_1")
    with pytest.raises(PainterlyError, match="too small for relu5_1"):  # its 16 px stride needs 32 px a side
        painterly.stylize(content[..., :20, :], style, method="wct", levels=("relu5_1",), decoders=(str(deepest),),
                          size=w, precision="fp32")


def test_tiles_use_whole_image_statistics(tmp_path, tiny_vgg):
    path, _ = _decoder(tmp_path, "relu1_1")
    path2, _ = _decoder(tmp_path, "relu2_1")
    content, style = _images(2)
    content = torch.nn.functional.interpolate(content, size=(93, 125), mode="bilinear")  # tiles of odd sides
    options = dict(method="wct", levels=("relu2_1", "relu1_1"), decoders=(str(path2), str(path)), size=125, precision="fp32",
                   strength=1.0, color_match=0.5)  # the colour step too, its statistics gathered over the tiles
    whole = _array(painterly.stylize(content, style, **options))
    tiled = _array(painterly.stylize(content, style, tile_size=64, tile_overlap=16, **options))
    assert painterly.plan(content, **options, tile_size=64, tile_overlap=16).scales[0].tiling is not None
    # the same colours in every tile (whole-image statistics): the channel means agree closely
    assert np.abs(whole.mean((0, 1)) - tiled.mean((0, 1))).max() < 0.01
    assert np.abs(whole - tiled).mean() < 0.02


def test_tiles_are_encoded_with_their_surroundings_on_the_level_grid(tmp_path, tiny_vgg, monkeypatch):
    """Each tile is encoded and decoded with CONTEXT px around it, its corner on the level's stride grid,
    so its pixels see what they see in the whole image: the tiled picture is far closer to the whole one
    than tiles cut as they are (whose relu4_1 grid and borders differ from the whole image's)."""
    import painterly.methods.arbitrary as arbitrary

    path, _ = _decoder(tmp_path, "relu2_1")
    content, style = _images(5)
    content = torch.nn.functional.interpolate(content, size=(93, 125), mode="bilinear")
    # float pictures: the tiny decoders' spread is below 8-bit rounding
    config = WctConfig(levels=("relu2_1",), decoders=(str(path),), size=125, precision="fp32", strength=1.0)
    whole = run(content, [style], config)
    tiled = run(content, [style], dataclasses.replace(config, tile_size=64, tile_overlap=16))
    monkeypatch.setattr(arbitrary, "_with_context", lambda box, size, margin, stride: box)
    bare = run(content, [style], dataclasses.replace(config, tile_size=64, tile_overlap=16))
    spread = (whole - whole.mean((2, 3), keepdim=True)).abs().mean()
    assert (whole - bare).abs().mean() > 0.01 * spread  # tiles cut as they are do differ
    assert (whole - tiled).abs().mean() < 0.25 * (whole - bare).abs().mean()


def test_deep_levels_keep_their_tiles_encodings_for_the_transform_pass(tmp_path, tiny_vgg, monkeypatch):
    """Where the plan reserves room, a tiled relu4_1 level encodes each tile once (its encodings kept from the
    statistics pass, each handed back once decoded) and makes exactly the picture it makes encoding every tile
    twice, as the plan without the room does; relu1_1 (64 values a pixel) always encodes twice. Exactly so with
    a repeated level, a decoder behind a margin and a style per region too. The plan's time counts it."""
    import weakref

    import painterly.methods.arbitrary as arbitrary

    deep, _ = _decoder(tmp_path, "relu4_1")
    shallow, _ = _decoder(tmp_path, "relu1_1")
    content, style = _images(6)
    content = torch.nn.functional.interpolate(content, size=(93, 125), mode="bilinear")
    config = WctConfig(levels=("relu4_1", "relu1_1"), decoders=(str(deep), str(shallow)), size=125,
                       precision="fp32", strength=1.0, tile_size=64, tile_overlap=16)
    options = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    calls, encoded, alive = [], [], []
    encode, decode = arbitrary.FeatureLevel.encode, arbitrary.FeatureLevel.decode

    def counted_encode(self, run, image):
        out = encode(self, run, image)
        calls.append(self.layer)
        if self.layer == "relu4_1":
            encoded.append(weakref.ref(out))
        return out

    def counted_decode(self, run, features):
        if self.layer == "relu4_1":  # the encodings still held as this tile is decoded
            alive.append(sum(ref() is not None for ref in encoded))
        return decode(self, run, features)

    monkeypatch.setattr(arbitrary.FeatureLevel, "encode", counted_encode)
    monkeypatch.setattr(arbitrary.FeatureLevel, "decode", counted_decode)
    plan = painterly.plan(content, method="wct", **options)
    tiling = plan.scales[0].tiling
    tiles = tiling.tile_count((93, 125))
    assert tiles > 1 and plan.scales[0].reserve == arbitrary.ArbitraryMemory(("relu4_1", "relu1_1"), 4, 3.0) \
        .kept_bytes("relu4_1", (93, 125), tiling) > 0
    kept = run(content, [style], config)
    assert calls.count("relu4_1") == tiles and calls.count("relu1_1") == 2 * tiles
    assert alive == list(range(tiles, 0, -1))  # each tile's encoding handed back once it is decoded

    calls.clear()
    reserve_bytes = arbitrary.ArbitraryMemory.reserve_bytes
    monkeypatch.setattr(arbitrary.ArbitraryMemory, "reserve_bytes", lambda self, size, tiling: 2**50)
    lean = painterly.plan(content, method="wct", **options)
    assert lean.scales[0].reserve == 0
    assert plan.seconds < lean.seconds  # one encoding to relu4_1 a tile instead of two
    again = run(content, [style], config)
    assert calls.count("relu4_1") == 2 * tiles and torch.equal(kept, again)

    margin, _ = _decoder(tmp_path, "relu4_1", seed=1, margin=8)
    left = torch.zeros(1, 1, 93, 125)
    left[..., :50] = 1
    varied = dataclasses.replace(config, levels=("relu4_1", "relu1_1", "relu4_1"),
                                 decoders=(str(margin), str(shallow), str(margin)))
    inputs = dict(style_masks=[left, 1 - left])
    calls.clear()
    twice = run(content, [style, style.flip(-1)], varied, **inputs)
    encodings = calls.count("relu4_1")
    monkeypatch.setattr(arbitrary.ArbitraryMemory, "reserve_bytes", reserve_bytes)
    calls.clear()
    once = run(content, [style, style.flip(-1)], varied, **inputs)
    assert encodings == 2 * calls.count("relu4_1") > 0 and torch.equal(once, twice)


def test_the_plan_reserves_room_for_kept_encodings_only_where_the_budget_allows():
    """Auto tiles leave room for the kept encodings where some tile size does; where none does, the largest
    tiles without it (never a refusal that encoding twice avoids); an explicit tile size reserves only within
    the budget. The reserve is what the encodings take, summed along each axis as the run grows each box."""
    from painterly.methods.arbitrary import CONTEXT, ArbitraryMemory, _with_context
    from painterly.schedule import Scale, plan_tiles, scale_peak_bytes
    from painterly.tiling import choose_tiling

    memory = ArbitraryMemory(("relu4_1",), 4, margin=16)
    for size, tile in (((1536, 2048), 1024), ((93, 125), 64), ((600, 600), 256)):
        tiling = choose_tiling(tile, None, 1, packed=True)
        whole = memory.reflected(size)
        boxes = [_with_context(b, whole, CONTEXT, 8) for b in tiling.boxes(whole, 0)]
        by_box = 4 * 512 * sum(-(-b.height // 8) * -(-b.width // 8) for b in boxes)
        assert memory.kept_bytes("relu4_1", size, tiling) == memory.reserve_bytes(size, tiling) == by_box
    assert ArbitraryMemory(("relu1_1",), 4).reserve_bytes((600, 600), choose_tiling(256, None, 1, packed=True)) == 0

    scale = Scale(6144, 8192, 1)
    whole = memory.scale_bytes(scale.size, None, 1)
    roomy = plan_tiles([scale], memory, int(whole * 0.8), rounds=1)[0]
    assert roomy.tiling is not None and roomy.reserve == memory.reserve_bytes(scale.size, roomy.tiling) > 0
    assert scale_peak_bytes(roomy, memory) <= whole * 0.8
    # a budget that 256 px tiles fit only without the reserve
    smallest = choose_tiling(256, None, 1, packed=True)
    tight_budget = memory.scale_bytes(scale.size, smallest, 1) + memory.reserve_bytes(scale.size, smallest) // 2
    tight = plan_tiles([scale], memory, tight_budget, rounds=1)[0]
    assert tight.tiling is not None and tight.reserve == 0 and scale_peak_bytes(tight, memory) <= tight_budget
    explicit = plan_tiles([scale], memory, tight_budget, tile_size=2048, rounds=1)[0]
    assert explicit.tiling.tile == 2048 and explicit.reserve == 0
    generous = plan_tiles([scale], memory, 2**40, tile_size=2048, rounds=1)[0]
    assert generous.reserve == memory.reserve_bytes(scale.size, generous.tiling) > 0


def test_style_masks_and_blend_weights_change_the_picture(tmp_path, tiny_vgg):
    path, _ = _decoder(tmp_path, "relu1_1")  # one convolution: the picture follows the features closely
    content, style = _images(3)
    dark = style * 0.2
    base = dict(method="wct", levels=("relu1_1",), decoders=(str(path),), size=64, precision="fp32", strength=1.0)
    only_first = _array(painterly.stylize(content, [style, dark], style_blend_weights=(1, 0), **base))
    plain = _array(painterly.stylize(content, [style], **base))
    assert np.abs(only_first - plain).max() <= 1 / 255 + 1e-6  # weight 0 drops the second style
    left = torch.zeros(1, 1, 48, 64)
    left[..., :32] = 1
    masked = _array(painterly.stylize(content, [style, dark], style_masks=[left, 1 - left], **base))
    # the left half follows the first style, the right half the second
    assert np.abs(masked[:, :24] - plain[:, :24]).mean() < np.abs(masked[:, 40:] - plain[:, 40:]).mean()


def test_bad_decoders_and_options_are_one_line_errors(tmp_path, tiny_vgg):
    content, style = _images()
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 64)
    wrong_level, _ = _decoder(tmp_path, "relu3_1")
    wct_decoder, wct_net = _decoder(tmp_path, "relu4_1")
    save_decoder(wct_decoder, wct_net, {"method": "wct"}, dtype=torch.float32)
    for kwargs, fragment in ((dict(decoder=str(bad)), "not a painterly decoder file"),
                             (dict(decoder=str(wrong_level)), "trained for relu3_1"),
                             (dict(decoder=str(wct_decoder)), "was trained for wct, not adain"),
                             (dict(decoder=str(tmp_path / "none.safetensors")), "does not exist"),
                             (dict(decoder=str(wrong_level), strength=1.5), "strength must be at most 1")):
        steps = []  # a bad decoder is refused with the style side, before the content is encoded
        with pytest.raises(PainterlyError, match=fragment) as info:
            painterly.stylize(content, style, method="adain", size=64, precision="fp32", callback=steps.append,
                              **kwargs)
        assert "\n" not in str(info.value) and not steps


@pytest.fixture
def folders(tmp_path):
    g = np.random.default_rng(0)
    for name, scale in (("photos", 255), ("styles", 120)):
        (tmp_path / name).mkdir()
        for i in range(3):
            Image.fromarray((g.random((40, 48, 3)) * scale).astype(np.uint8)).save(tmp_path / name / f"{i}.png")
    return tmp_path / "photos", tmp_path / "styles"


@pytest.mark.parametrize("method,level,extra", [("adain", "relu4_1", {}), ("wct", "relu2_1", {}),
                                                ("wct", "relu2_1", {"stylised_share": 0.5}),
                                                ("adain", "relu4_1", {"hue_jitter": 180.0}),
                                                ("adain", "relu4_1", {"margin": 8})])
def test_decoder_training_lowers_its_loss_and_resumes_exactly(tmp_path, folders, tiny_vgg, method, level, extra):
    """(WCT with a stylised share, and turned hues: the style crops, strengths and angles come from the
    checkpointed generator too.)"""
    photos, styles = folders
    config = DecoderTrainConfig(method=method, level=level, steps=24, batch=2, crop=32, image_side=40, precision="fp32",
                                learning_rate=1e-2, width_divisor=1, **extra)
    info = train_decoder(photos, tmp_path / "a.safetensors", config, styles=styles)
    log = [r["total"] for r in info["log"]]
    assert np.mean(log[-4:]) < 0.6 * np.mean(log[:4])
    short = dataclasses.replace(config, steps=6)
    train_decoder(photos, tmp_path / "b.safetensors", short, styles=styles)
    ckpt = Checkpointer(tmp_path / "t.ckpt", seconds=None)

    def stop(step, steps, losses, rate):
        if step == 3:
            ckpt.request_stop(signal.SIGINT)

    with pytest.raises(Interrupted):
        train_decoder(photos, tmp_path / "c.safetensors", short, styles=styles, checkpoint=ckpt, callback=stop)
    train_decoder(photos, tmp_path / "c.safetensors", short, styles=styles,
                  checkpoint=Checkpointer(tmp_path / "t.ckpt", seconds=None, resume=True))
    b, meta = load_decoder(tmp_path / "b.safetensors")
    c, _ = load_decoder(tmp_path / "c.safetensors")
    assert meta["method"] == method and b.arch.level == level and b.arch.margin == extra.get("margin", 0)
    assert all(torch.equal(x, y) for x, y in zip(b.state_dict().values(), c.state_dict().values()))


def test_decoder_training_can_start_from_a_trained_decoder(tmp_path, folders, tiny_vgg):
    photos, styles = folders
    config = DecoderTrainConfig(method="wct", level="relu2_1", steps=20, batch=2, crop=32, image_side=40,
                                precision="fp32", learning_rate=1e-2, width_divisor=1)
    first = train_decoder(photos, tmp_path / "a.safetensors", config, extractor=tiny_vgg)
    second = train_decoder([photos, styles], tmp_path / "b.safetensors", config, steps=2,  # an option over the config
                           init=tmp_path / "a.safetensors", extractor=tiny_vgg)
    assert second["log"][0]["total"] < 0.5 * first["log"][0]["total"]
    assert second["training"]["photos"] == 6 and second["training"]["initialised_from"].endswith("a.safetensors")
    assert second["training"]["steps"] == 2 and second["training"]["level"] == "relu2_1"
    with pytest.raises(PainterlyError, match="unknown training option 'levle'"):
        train_decoder(photos, tmp_path / "x.safetensors", method="wct", levle="relu2_1")
    with pytest.raises(PainterlyError, match="wct's for relu2_1; this run trains wct's for relu3_1"):
        train_decoder(photos, tmp_path / "c.safetensors", dataclasses.replace(config, level="relu3_1"),
                      init=tmp_path / "a.safetensors", extractor=tiny_vgg)


def test_a_decoder_trained_from_another_keeps_its_margin_unless_told(tmp_path, folders, tiny_vgg):
    """--init carries the decoder's margin (inference runs it so); --margin sets another, 0 none."""
    photos, styles = folders
    config = DecoderTrainConfig(method="adain", steps=1, batch=2, crop=32, image_side=40, precision="fp32",
                                width_divisor=1)
    train_decoder(photos, tmp_path / "m.safetensors", config, styles=styles, margin=16)
    assert "level relu4_1, inside a 16 px reflected margin; " in describe_decoder(tmp_path / "m.safetensors")
    for margin, kept in ((None, 16), (0, 0), (8, 8)):
        info = train_decoder(photos, tmp_path / "n.safetensors", config, styles=styles, margin=margin,
                             init=tmp_path / "m.safetensors")
        assert load_decoder(tmp_path / "n.safetensors")[0].arch.margin == info["training"]["margin"] == kept
    train_decoder(photos, tmp_path / "w.safetensors", config, styles=styles, crop=40, margin=32)
    with pytest.raises(PainterlyError, match="multiple of 8 px below the crop"):  # inherited, checked too
        train_decoder(photos, tmp_path / "x.safetensors", config, styles=styles, init=tmp_path / "w.safetensors")
    wct_path = tmp_path / "wct.safetensors"  # WCT's training trains no margin: the file drops one it inherits
    save_decoder(wct_path, Decoder(DecoderArch("relu2_1", 1, DIVISOR, margin=8)), {"method": "wct"})
    wct_config = DecoderTrainConfig(method="wct", level="relu2_1", steps=1, batch=2, crop=32, image_side=40,
                                    precision="fp32", width_divisor=1)
    train_decoder(photos, tmp_path / "y.safetensors", wct_config, init=wct_path)
    assert load_decoder(tmp_path / "y.safetensors")[0].arch.margin == 0


def test_widened_decoder_decodes_the_same_image_and_trains_from_there(tmp_path, folders, tiny_vgg):
    """--widen grows a trained decoder (here its quarter-resolution layers 16 -> 40 channels): the same
    image at the start (Net2Net), the new channels learn apart from their originals, and the file keeps
    the widths."""
    photos, styles = folders
    config = DecoderTrainConfig(method="adain", steps=4, batch=2, crop=32, image_side=40, precision="fp32",
                                learning_rate=1e-2, width_divisor=1)
    train_decoder(photos, tmp_path / "a.safetensors", config, styles=styles)
    slim, _ = load_decoder(tmp_path / "a.safetensors")
    assert slim.arch.own_widths() == (4, 8, 16)
    wide = widened_decoder(slim, (4, 8, 40), torch.Generator().manual_seed(0))
    assert [c.out_channels for c in wide.convs()] == [40, 40, 40, 40, 8, 8, 4, 4, 3]
    features = torch.rand(2, 32, 6, 5) * 50
    torch.testing.assert_close(wide(features), slim(features), rtol=1e-5, atol=1e-6)
    with pytest.raises(PainterlyError, match="narrower"):
        widened_decoder(slim, (4, 4, 40), torch.Generator())
    with pytest.raises(PainterlyError, match="takes 3 channel counts"):
        widened_decoder(slim, (8, 40), torch.Generator())

    grown = dataclasses.replace(config, widen=(4, 8, 40), steps=3)
    plain = train_decoder(photos, tmp_path / "b.safetensors", dataclasses.replace(grown, widen=None),
                          styles=styles, init=tmp_path / "a.safetensors")
    info = train_decoder(photos, tmp_path / "c.safetensors", grown, styles=styles, init=tmp_path / "a.safetensors")
    assert info["log"][0]["total"] == pytest.approx(plain["log"][0]["total"], rel=1e-5)  # the same start
    trained, _ = load_decoder(tmp_path / "c.safetensors")
    assert trained.arch.widths == (4, 8, 40)
    first = trained.convs()[0].weight
    assert not torch.allclose(first[16:32], first[:16])  # copies no more
    with pytest.raises(PainterlyError, match="give it with --init"):
        train_decoder(photos, tmp_path / "d.safetensors", grown, styles=styles)


def test_train_decoder_command_and_method_command(tmp_path, folders, tiny_vgg, capsys):
    from painterly import cli

    photos, styles = folders
    decoder = tmp_path / "adain.safetensors"
    assert cli.main(["train-decoder", "--method", "adain", "--photos", str(photos), "--styles", str(styles),
                     "-o", str(decoder), "--steps", "3", "--batch", "1", "--crop", "32", "--image-side", "40", "--width-divisor", "1",
                     "--precision", "fp32", "-q"]) == 0, capsys.readouterr().err
    assert (tmp_path / "adain.preview.png").exists() and (tmp_path / "adain.loss.png").exists()
    assert cli.main(["train", "--method", "adain", "--photos", str(photos), "--styles", str(styles),  # the same
                     "-o", str(tmp_path / "again.safetensors"), "--steps", "3", "--batch", "1", "--crop", "32",
                     "--image-side", "40", "--width-divisor", "1", "--precision", "fp32", "-q"]) == 0
    first, again = load_decoder(decoder)[0].state_dict(), load_decoder(tmp_path / "again.safetensors")[0].state_dict()
    assert all(torch.equal(first[k], again[k]) for k in first)
    out = tmp_path / "out.png"
    assert cli.main([str(photos / "0.png"), str(styles / "1.png"), "--method", "adain", "--decoder", str(decoder),
                     "-o", str(out), "--size", "48", "-q"]) == 0, capsys.readouterr().err
    assert Image.open(out).size == (48, 40)
    capsys.readouterr()
    # `painterly models` tells a decoder file from a network file and describes it from its metadata
    assert cli.main(["models", str(decoder)]) == 0
    assert capsys.readouterr().out.startswith("adain: decoder for --method adain, level relu4_1; ")
    decoder.write_bytes(decoder.read_bytes()[:200])  # truncated: one line, and the listing fails
    assert cli.main(["models", str(decoder)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'" + str(decoder) + "'" in err[0] and "neither" in err[0], err
    assert cli.main(["train-decoder", "--method", "adain", "--photos", str(photos), "-o",
                     str(tmp_path / "x.safetensors"), "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "style images" in err[0]


def test_wct_levels_and_decoders_from_the_command_line(tmp_path, folders, tiny_vgg, capsys):
    """--levels and --decoders take comma-separated lists; each level is checked, in one line."""
    from painterly import cli

    photos, styles = folders
    (p2, _), (p1, _) = _decoder(tmp_path, "relu2_1", 1), _decoder(tmp_path, "relu1_1", 2)
    content, style, out = photos / "0.png", styles / "1.png", tmp_path / "out.png"
    assert cli.main([str(content), str(style), "--method", "wct", "--levels", "relu2_1,relu1_1", "--decoders",
                     f"{p2},{p1}", "--size", "48", "--precision", "fp32", "-o", str(out), "-q"]) == 0, \
        capsys.readouterr().err
    expected = painterly.stylize(str(content), str(style), method="wct", levels=("relu2_1", "relu1_1"),
                                 decoders=(str(p2), str(p1)), size=48, precision="fp32")
    assert np.array_equal(np.asarray(Image.open(out)), np.asarray(expected))
    capsys.readouterr()
    assert cli.main([str(content), str(style), "--method", "wct", "--levels", "relu2_1,relu9_1", "-o",
                     str(tmp_path / "bad.png"), "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "levels (each) must be" in err[0] and "'relu9_1'" in err[0], err
    assert not (tmp_path / "bad.png").exists()


def test_style_max_side_encodes_the_style_smaller(tmp_path, tiny_vgg, monkeypatch):
    """Style images are encoded at most style_max_side long (the sizes the encoder sees), and then
    scaled by style_scale: applied after the cap, the cap undid every style_scale above 1 at 512 px."""
    path, _ = _decoder(tmp_path, "relu4_1")
    content, style = _images(2)
    style = torch.nn.functional.interpolate(style, size=(96, 128), mode="bilinear", align_corners=False)
    seen = []
    forward = type(tiny_vgg).__call__
    monkeypatch.setattr(type(tiny_vgg), "__call__", lambda self, x, *a, **k: (seen.append(tuple(x.shape[-2:])),
                                                                             forward(self, x, *a, **k))[1])
    for cap in (32, None):
        seen.clear()
        painterly.stylize(content, style, method="adain", decoder=str(path), size=64, precision="fp32",
                          style_max_side=cap)
        assert (24, 32) in seen if cap == 32 else (48, 64) in seen and (24, 32) not in seen, (cap, seen)
    seen.clear()
    painterly.stylize(content, style, method="adain", decoder=str(path), size=64, precision="fp32",
                      style_max_side=32, style_scale=2)
    assert (48, 64) in seen and (24, 32) not in seen, seen


def test_wct_defaults_to_relu4_1_relu2_1_and_relu4_1_again_at_strength_1(tmp_path, tiny_vgg, monkeypatch):
    """The measured defaults (painterly.methods.wct): relu4_1, relu2_1, then a second relu4_1 pass, at
    strength 1. (Float images: the tiny decoders' spread is below 8-bit rounding.)"""
    bundled = tmp_path / "bundled"
    bundled.mkdir()
    monkeypatch.setattr("painterly.methods.wct.DECODERS", bundled)
    monkeypatch.setattr("painterly.methods.arbitrary.DECODERS", bundled)
    content, style = _images(3)
    for level, seed in (("relu1_1", 4), ("relu2_1", 5), ("relu3_1", 6)):
        path, _ = _decoder(tmp_path, level, seed)
        path.rename(bundled / f"wct_{level}.safetensors")
    with pytest.raises(painterly.PainterlyError, match="decoder\\(s\\) of relu4_1 are not bundled"):
        painterly.stylize(content, style, method="wct", size=64, precision="fp32")
    _decoder(tmp_path, "relu4_1", 7)[0].rename(bundled / "wct_relu4_1.safetensors")

    def wct_image(**options):
        return run(content, [style], WctConfig(size=64, precision="fp32", **options))

    default = wct_image()
    assert torch.equal(default, wct_image(levels=("relu4_1", "relu2_1", "relu4_1"), strength=1.0))
    assert not torch.equal(default, wct_image(levels=("relu4_1", "relu3_1", "relu2_1", "relu4_1"), strength=1.0))
    assert not torch.equal(default, wct_image(strength=0.9))
    with pytest.raises(painterly.PainterlyError, match="needs --levels"):
        painterly.stylize(content, style, method="wct", size=64, decoders=(str(tmp_path / "x.safetensors"),))


def test_wct_level_given_twice_is_a_second_pass_over_the_result(tmp_path, tiny_vgg):
    """relu4_1,relu3_1,relu4_1 is relu4_1,relu3_1 and then relu4_1 run again on that image; two files
    for one level are refused."""
    files = {level: str(_decoder(tmp_path, level, seed)[0]) for level, seed in (("relu4_1", 1), ("relu3_1", 2))}
    content, style = _images(5)

    def wct_image(image, levels):
        return run(image, [style], WctConfig(size=64, precision="fp32", levels=levels,
                                             decoders=tuple(files[level] for level in levels)))

    once = wct_image(content, ("relu4_1", "relu3_1"))
    twice = wct_image(content, ("relu4_1", "relu3_1", "relu4_1"))
    assert torch.allclose(twice, wct_image(once, ("relu4_1",)), rtol=0, atol=1e-6)
    assert (twice - once).abs().max() > 1e-4  # the second pass changed the image
    other = tmp_path / "other.safetensors"
    other.write_bytes(Path(files["relu4_1"]).read_bytes())
    with pytest.raises(painterly.PainterlyError, match="relu4_1 runs twice with two decoder files"):
        painterly.stylize(content, style, method="wct", size=64, levels=("relu4_1", "relu3_1", "relu4_1"),
                          decoders=(files["relu4_1"], files["relu3_1"], str(other)))


def test_gram_distance_is_gatys_style_loss_at_one_layer_by_hand():
    from painterly.decoder_training import UNIT, gram_distance

    g = torch.Generator().manual_seed(3)
    a, b = torch.rand(2, 64, 5, 6, generator=g), torch.rand(2, 64, 5, 6, generator=g) * 2
    expected = 0.0
    for x, y in zip(a.double().reshape(2, 64, 30), b.double().reshape(2, 64, 30)):
        ga, gb = (x @ x.T / 30).numpy(), (y @ y.T / 30).numpy()
        expected += ((ga - gb) ** 2).sum()
    expected = UNIT ** 2 * expected / (2 * 64 * 64) / 64 ** 2  # the mean over the batch's entries, / channels^2
    assert float(gram_distance(a, b, "relu1_1")) == pytest.approx(expected, rel=1e-5)
    assert float(gram_distance(a, a, "relu1_1")) == 0


@pytest.mark.parametrize("method,level,extra,option,term,ruling", [
    ("adain", "relu4_1", {}, "gram_weight", "gram", 1e9),
    ("adain", "relu4_1", {}, "target_gram_weight", "target_gram", 1e13),
    ("wct", "relu2_1", {"stylised_share": 0.5}, "target_gram_weight", "target_gram", 1e9)])
def test_gram_weights_train_the_decoder_to_the_texture(tmp_path, folders, tiny_vgg, method, level, extra, option, term,
                                                       ruling):
    """The same batches with a Gram term at a weight too small to matter and at one that rules: the
    second decoder's outputs end nearer the Gram matrices that term aims at (gram: the styles' at
    relu1_1..relu4_1; target_gram: the target features' at the decoded level, coloured ones included;
    the logged term over its weight is the distance itself). `ruling` makes the term ~100x the others."""
    photos, styles = folders
    config = DecoderTrainConfig(method=method, level=level, steps=80, batch=2, crop=32, image_side=40,
                                precision="fp32", learning_rate=1e-2, width_divisor=1, seed=1, **extra)
    plain = train_decoder(photos, tmp_path / "a.safetensors", dataclasses.replace(config, steps=1), styles=styles)
    assert term not in plain["log"][0]
    first, last = {}, {}
    for weight in (1e-3, ruling):
        log = train_decoder(photos, tmp_path / "b.safetensors", dataclasses.replace(config, **{option: weight}),
                            styles=styles)["log"]
        first[weight] = log[0][term] / weight
        last[weight] = np.mean([r[term] / weight for r in log[-30:]])
    assert first[ruling] == pytest.approx(first[1e-3])  # the same start and batches
    assert last[ruling] < 0.85 * last[1e-3], last


def test_wct_stylised_share_decodes_coloured_features_more_faithfully(tmp_path, folders, tiny_vgg):
    """Trained on coloured features too, the decoder's image re-encodes nearer to a WCT target it never saw."""
    photos, styles = folders
    config = DecoderTrainConfig(method="wct", level="relu2_1", steps=40, batch=2, crop=32, image_side=40,
                                precision="fp32", learning_rate=1e-2, width_divisor=1, seed=2)
    train_decoder(photos, tmp_path / "plain.safetensors", config, styles=styles)
    info = train_decoder(photos, tmp_path / "coloured.safetensors",
                         dataclasses.replace(config, stylised_share=0.5), styles=styles)
    assert info["training"]["styles"] == 3 and {"pixels", "features"} <= set(info["log"][0])
    content, style = _images(4)
    errors = {}
    with torch.no_grad():
        c, s = tiny_vgg(content, ["relu2_1"])["relu2_1"], tiny_vgg(style, ["relu2_1"])["relu2_1"]
        target = wct(c, WctMap.between(Moments.of(c, full=True), Moments.of(s, full=True)), 1.0)
        for name in ("plain", "coloured"):
            decoder, _ = load_decoder(tmp_path / f"{name}.safetensors")
            again = tiny_vgg(decoder.float()(target).clamp(0, 1), ["relu2_1"])["relu2_1"]
            errors[name] = float((again - target).pow(2).mean())
    assert errors["coloured"] < 0.8 * errors["plain"], errors


def test_colour_matched_moves_each_images_colours_toward_its_style_crop():
    """Fraction 1: each image takes its own style crop's colour mean and 3x3 covariance exactly; 0.5: the
    mean half way; the gradient reaches the image through the step's affine map."""
    g = torch.Generator().manual_seed(0)
    images = torch.rand(2, 3, 12, 10, generator=g).requires_grad_(True)
    styles = torch.rand(2, 3, 9, 11, generator=g) * torch.tensor([0.9, 0.3, 0.6]).view(1, 3, 1, 1)
    full = colour_matched(images, styles, 1.0)
    for i in range(2):
        got, want = Moments.of(full[i:i + 1].detach(), full=True), Moments.of(styles[i:i + 1], full=True)
        assert torch.allclose(got.mean, want.mean, atol=1e-5)
        assert torch.allclose(got.covariance, want.covariance, atol=1e-5)
    half = colour_matched(images, styles, 0.5).detach()
    expected = (images.detach().mean((2, 3)) + styles.mean((2, 3))) / 2
    assert torch.allclose(half.mean((2, 3)), expected, atol=1e-5)
    full[1].sum().backward()
    assert images.grad[0].abs().sum() == 0 and images.grad[1].abs().sum() > 0


def test_adain_decoder_trained_through_the_colour_step_scores_better_after_it(tmp_path, folders, tiny_vgg):
    """On pairs it never saw, the decoded image after AdaIN's colour step (as inference runs it) is nearer
    the style's channel means and deviations with a decoder trained through that step than without."""
    photos, styles = folders
    config = DecoderTrainConfig(method="adain", steps=40, batch=2, crop=32, image_side=40, precision="fp32",
                                learning_rate=1e-2, width_divisor=1, seed=1)
    train_decoder(photos, tmp_path / "plain.safetensors", config, styles=styles)
    info = train_decoder(photos, tmp_path / "stepped.safetensors", dataclasses.replace(config, color_match=0.5),
                         styles=styles)
    assert info["training"]["color_match"] == 0.5
    g = torch.Generator().manual_seed(5)
    content, style = torch.rand(3, 3, 32, 32, generator=g), torch.rand(3, 3, 32, 32, generator=g) * 0.47
    misses = {}
    with torch.no_grad():
        style_features = tiny_vgg(style, ADAIN_STYLE_LAYERS)
        target = batch_adain(tiny_vgg(content, ["relu4_1"])["relu4_1"], style_features["relu4_1"])
        for name in ("plain", "stepped"):
            decoder, _ = load_decoder(tmp_path / f"{name}.safetensors")
            features = tiny_vgg(colour_matched(decoder.float()(target), style, 0.5), ADAIN_STYLE_LAYERS)
            misses[name] = sum(float((a - b).pow(2).mean()) for layer in ADAIN_STYLE_LAYERS
                               for a, b in zip(instance_mean_std(features[layer]),
                                               instance_mean_std(style_features[layer])))
    assert misses["stepped"] < 0.8 * misses["plain"], misses


def test_turn_hues_moves_colours_round_the_grey_axis():
    image = 0.4 + 0.2 * torch.rand(2, 3, 5, 7, generator=torch.Generator().manual_seed(0))
    # a third of a turn sends red to green, green to blue and blue to red
    assert torch.allclose(turn_hues(image, torch.tensor([120.0, -240.0])), image[:, [2, 0, 1]], atol=1e-6)
    assert torch.allclose(turn_hues(image, torch.tensor([0.0, 360.0])), image, atol=1e-6)
    turned = turn_hues(image, torch.tensor([35.0, -70.0]))  # mid-range colours stay inside the cube
    assert torch.allclose(turned.sum(1), image.sum(1), atol=1e-6)  # the brightness (grey-axis part) stays
    assert torch.allclose((turned - turned.mean(1, keepdim=True)).norm(dim=1),
                          (image - image.mean(1, keepdim=True)).norm(dim=1), atol=1e-6)  # and the saturation
    assert not torch.allclose(turned, image, atol=1e-2)
    grey = torch.full((1, 3, 2, 2), 0.3)
    assert torch.allclose(turn_hues(grey, torch.tensor([77.0])), grey, atol=1e-6)


def test_hue_jitter_shows_the_decoder_a_red_painting_in_other_palettes():
    red = [torch.rand(1, 3, 40, 48, generator=torch.Generator().manual_seed(i)) * torch.tensor([0.9, 0.2, 0.1]).view(
        1, 3, 1, 1) for i in range(3)]
    dominant = {}
    for jitter in (0.0, 180.0):
        config = DecoderTrainConfig(batch=16, crop=32, image_side=40, hue_jitter=jitter)
        crops = StyleCrops(red, config, torch.Generator().manual_seed(0)).draw(torch.device("cpu"))
        dominant[jitter] = set(crops.mean((2, 3)).argmax(1).tolist())
    assert dominant[0.0] == {0} and dominant[180.0] == {0, 1, 2}


def test_decoder_loss_options_are_refused_where_they_do_not_apply(tmp_path, folders, tiny_vgg):
    photos, styles = folders
    for kwargs, fragment in ((dict(method="adain", stylised_share=0.5),
                              "stylised-share is not an option of the adain"),
                             (dict(method="wct", level="relu2_1", gram_weight=1.0),
                              "gram-weight is not an option of the wct"),
                             (dict(method="wct", level="relu2_1", style_weight=5.0),
                              "style-weight is not an option of the wct"),
                             (dict(method="adain", feature_weight=5.0), "feature-weight is not an option of the adain"),
                             (dict(method="wct", level="relu2_1", stylised_share=1.5), "at most 1"),
                             (dict(method="adain", hue_jitter=200), "at most 180 degrees"),
                             (dict(method="wct", level="relu2_1", color_match=0.5),
                              "color-match is not an option of the wct"),
                             (dict(method="adain", color_match=1.5), "at most 1"),
                             (dict(method="wct", level="relu2_1", margin=8), "margin is not an option of the wct"),
                             (dict(method="adain", margin=12), "multiple of 8 px below the crop"),
                             (dict(method="adain", margin=256), "multiple of 8 px below the crop"),
                             (dict(method="adain", margin=8, crop=36),
                              "the crop a multiple of 8 px where there is a margin")):
        with pytest.raises(PainterlyError, match=fragment):
            DecoderTrainConfig(**kwargs)
    config = DecoderTrainConfig(method="wct", level="relu2_1", steps=1, batch=2, crop=32, image_side=40,
                                precision="fp32", width_divisor=1, stylised_share=0.5)
    with pytest.raises(PainterlyError, match="style images too"):
        train_decoder(photos, tmp_path / "x.safetensors", config)
    with pytest.raises(PainterlyError, match="hue-jitter turns style images, and this wct decoder trains on photos"):
        train_decoder(photos, tmp_path / "x.safetensors", dataclasses.replace(config, stylised_share=0.0,
                                                                              hue_jitter=90.0), styles=styles)
    (tmp_path / "no_styles").mkdir()
    with pytest.raises(PainterlyError, match="no readable style images under"):  # not "photos"
        train_decoder(photos, tmp_path / "x.safetensors", config, styles=tmp_path / "no_styles")
    assert not (tmp_path / "x.safetensors").exists()


@pytest.mark.parametrize("level", ["relu1_1", "relu2_1", "relu4_1"])
def test_inference_decoding_writes_into_padded_inputs_and_gives_the_same_picture(tmp_path, level):
    """Decoder.decode (no padding or upsampling copies) is forward() to float rounding, at odd sizes."""
    _, decoder = _decoder(tmp_path, level, spread=5.0)
    features = torch.rand(1, decoder.layers[0].conv.in_channels, 7, 11).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        expected = decoder(features)
    assert torch.allclose(decoder.decode(features), expected, atol=1e-5)


def test_a_whole_image_pass_reports_each_levels_encoding_and_decoding(tmp_path, tiny_vgg):
    """WCT over two levels and the colour step: six parts, each one step; the result comes last."""
    paths = [str(_decoder(tmp_path, level)[0]) for level in ("relu2_1", "relu1_1")]
    content, style = _images()
    seen = []
    out = painterly.stylize(content, style, method="wct", levels=("relu2_1", "relu1_1"), decoders=tuple(paths),
                            size=64, precision="fp32", color_match=0.5, callback=seen.append)
    assert [(i.iteration, i.iterations) for i in seen] == [(n, 6) for n in range(1, 7)]
    assert np.array_equal(np.asarray(seen[-1].preview()), np.asarray(out))


def test_the_plan_of_adain_and_wct_counts_their_encoders_and_decoders():
    """--dry-run for AdaIN and WCT: VGG19 to each level (241344 multiply-adds a pixel to relu4_1, 57024 to
    relu2_1, counted by hand from its widths), the level's bundled slim decoder (65376 and 19296) over the
    picture and its decoder's margin (AdaIN's 16 px a side), and the style encoded once at 512 px, at the
    measured end-to-end rate; WCT's whitening and colouring besides."""
    pixels = 768 * 1024
    adain = painterly.plan((768, 1024), method="adain", size=1024, precision="fp32")
    style = 241344 * 512 * 512
    assert adain.seconds == pytest.approx(2 * ((241344 + 65376) * 800 * 1056 + style) / 245e9, rel=1e-3)
    wct_plan = painterly.plan((768, 1024), method="wct", size=1024, precision="fp32")  # relu4_1, relu2_1, relu4_1
    convs = (2 * (241344 + 65376) + 57024 + 19296) * pixels + style
    transforms = 2 * (2 * 512 ** 2 * pixels / 64 + 128 ** 2 * pixels / 4)
    assert wct_plan.seconds == pytest.approx(2 * convs / 245e9 + 2 * transforms / 60e9, rel=1e-3)
    assert "one pass" in adain.describe() and "decoders' convolutions" in adain.describe()


def test_the_style_side_is_planned_and_sized_at_the_scale_asked_for():
    """--style-scale enlarges the style past --style-max-side, so the plan counts encoding it (a style
    2048 px long at 1024 px and style_scale 4); and a style too thin is judged, and named, at the scale
    given (style_scale 2 was refused as "style-scale 1 shrinks a style image to 280x14 px")."""
    from painterly.methods.arbitrary import capped_style_size

    plans = [painterly.plan((768, 1024), method="wct", size=1024, precision="fp32", style_scale=s,
                            style_sizes=[(600, 800)]) for s in (1, 4)]
    assert plans[1].peak_bytes > plans[0].peak_bytes + 2**30
    assert capped_style_size((768, 1024), (600, 800), 4, 512) == (1536, 2048)
    assert capped_style_size((64, 64), (20, 400), 2, 512) == (29, 572)
    with pytest.raises(painterly.PainterlyError, match=r"^style-scale 1 makes a style image 286x14 px for a 64x64 "
                                                        r"output; raise --style-scale"):
        capped_style_size((64, 64), (20, 400), 1, 512)
