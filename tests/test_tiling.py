"""Tiled optimisation: tile geometry, blending, global Gram targets over tiles, seams, resume."""

import dataclasses
import signal
import math
from pathlib import Path

import pytest
import torch

from painterly.checkpoint import Checkpointer, Interrupted, read_checkpoint
from painterly.driver import make_plan, run
from painterly.errors import PainterlyError
from painterly.features import FeatureExtractor
from painterly.guidance import masked_grams
from painterly.image import as_tensor, resize
from painterly.methods.gatys import GATYS, GatysConfig, GatysMemory, GatysObjective
from painterly.schedule import fit_tiling, plan_scales, plan_tiles, round_iterations, scale_peak_bytes
from painterly.tiling import (Box, Tiling, assign_to_tiles, axis_spans, blend_window, optimize_tiled, seam_ratio,
                              tile_borders)

from helpers import compute_targets

EXAMPLES = Path(__file__).resolve().parent.parent / "painterly" / "examples"

LAYERS = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_2", "relu5_1"]
MODEL = GatysMemory(tuple(LAYERS), "fp32", "lbfgs", 100)  # Gatys's default layers and optimiser


# --- geometry ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("shift", [0.0, 0.25, 0.5, 0.75])
def test_axis_spans_cover_overlap_exactly_and_respect_the_tile(shift):
    for length in range(40, 2500, 13):
        for tile, overlap in ((64, 16), (100, 16), (256, 32), (1024, 128)):
            spans = axis_spans(length, tile, overlap, shift)
            assert spans[0][0] == 0 and spans[-1][1] == length
            assert all(b - a <= tile for a, b in spans), (length, tile, spans)
            assert all(end - start == overlap for (_, end), (start, _) in zip(spans, spans[1:])), spans
            assert all(b - a >= 2 * overlap for a, b in spans[1:-1])


def test_a_packed_round_takes_the_fewest_spans_that_fit():
    """Unshifted (a network's one pass over the tiles) the spans need no room for moved seams: as few as
    fit in the tile, where a shifted round's room takes more (900 px in 512 px tiles: 2, not 3)."""
    for length in range(40, 2500, 7):
        for tile, overlap in ((64, 16), (100, 16), (256, 32), (512, 64), (1024, 128)):
            spans = axis_spans(length, tile, overlap, packed=True)
            assert spans[0][0] == 0 and spans[-1][1] == length
            assert all(b - a <= tile for a, b in spans), (length, tile, spans)
            assert all(end - start == overlap for (_, end), (start, _) in zip(spans, spans[1:])), spans
            fewest = 1 if length <= tile else math.ceil((length - overlap) / (tile - overlap))
            assert len(spans) == fewest, (length, tile, spans)
    assert len(axis_spans(900, 512, 64, packed=True)) == 2 and len(axis_spans(900, 512, 64)) == 3
    assert Tiling(512, 64, rounds=1, packed=True).tile_count((900, 900)) == 4
    with pytest.raises(PainterlyError, match="only a tiling of one round"):
        Tiling(512, 64, rounds=2, packed=True)


def test_axis_spans_one_span_when_it_fits():
    assert axis_spans(100, 100, 16) == [(0, 100)]
    assert axis_spans(100, 100, 16, 0.5) == [(0, 100)]


def test_rounds_move_every_seam():
    tiling = Tiling(256, 32, rounds=2)
    size = (600, 900)
    edges = []
    for r in range(2):
        boxes = tiling.boxes(size, r)
        edges.append({b.left for b in boxes if b.left > 0} | {b.top + 10_000 for b in boxes if b.top > 0})
    assert edges[0] and edges[1] and not edges[0] & edges[1]


def test_tiling_validates():
    with pytest.raises(PainterlyError, match="overlap must be at least 16"):
        Tiling(256, 8)
    with pytest.raises(PainterlyError, match="at least 4x the overlap"):
        Tiling(100, 32)
    with pytest.raises(PainterlyError, match="rounds must be at least 1"):
        Tiling(256, 32, rounds=0)


@pytest.mark.parametrize("r", [0, 1])
def test_blend_windows_of_a_round_sum_to_one(r):
    size = (300, 470)
    tiling = Tiling(128, 16, rounds=2)
    total = torch.zeros(1, 1, *size)
    for box in tiling.boxes(size, r):
        box.crop(total).add_(blend_window(box, size, tiling.overlap))
    assert torch.allclose(total, torch.ones_like(total), atol=1e-6)


def test_blend_window_is_one_at_image_borders_and_fades_inside():
    size = (100, 200)
    w = blend_window(Box(0, 0, 100, 120), size, 20)[0, 0]
    assert torch.all(w[:, 0] == 1) and torch.all(w[0, :100] == 1)  # image borders: no fade
    assert w[50, -1] < 0.01 and w[50, 99] == 1  # fades to ~0 at its inner edge


def test_optimize_tiled_visits_tiles_in_order_and_skips_done_ones():
    canvas = torch.rand(1, 3, 100, 150)
    before = canvas.clone()
    tiling = Tiling(64, 16, rounds=2)
    seen = []
    optimize_tiled(canvas, tiling, lambda crop, box, r, t: seen.append((r, t)) or crop)
    assert seen == [(r, t) for r in range(2) for t in range(len(tiling.boxes((100, 150), r)))]
    assert torch.allclose(canvas, before, atol=1e-6)  # returning the crop unchanged changes nothing
    seen.clear()
    optimize_tiled(canvas, tiling, lambda crop, box, r, t: seen.append((r, t)) or crop, start=(1, 2))
    assert seen[0] == (1, 2) and (0, 0) not in seen


def test_optimize_tiled_writes_back_through_the_window():
    size = (64, 120)
    canvas = torch.zeros(1, 1, *size)
    tiling = Tiling(96, 16, rounds=1)
    a, b = tiling.boxes(size, 0)
    optimize_tiled(canvas, tiling, lambda crop, box, r, t: torch.ones_like(crop))
    # by hand: tile a writes w_a * 1 over zeros; tile b blends ones over that with w_b = 1 - w_a
    expected = torch.zeros(1, 1, *size)
    a.crop(expected).copy_(blend_window(a, size, 16))
    w_b = blend_window(b, size, 16)
    b.crop(expected).mul_(1 - w_b).add_(w_b)
    assert torch.allclose(canvas, expected, atol=1e-6)
    assert canvas[..., :a.width - 16].eq(1).all() and canvas[..., b.left + 16:].eq(1).all()


def test_assign_to_tiles_picks_the_tile_a_point_is_deepest_in():
    size = (100, 150)
    tiling = Tiling(64, 16, rounds=1)
    boxes = tiling.boxes(size, 0)
    ys, xs = torch.meshgrid(torch.arange(size[0]), torch.arange(size[1]), indexing="ij")
    positions = torch.stack([ys.flatten(), xs.flatten()], dim=1).float()
    owner = assign_to_tiles(positions, size, tiling)
    windows = [blend_window(box, size, tiling.overlap)[0, 0] for box in boxes]
    for (y, x), i in zip(positions.long().tolist(), owner.tolist()):
        box = boxes[i]
        assert box.top <= y < box.top + box.height and box.left <= x < box.left + box.width
        # the windows of a round sum to one, so the largest holds at least half (a quarter at corners)
        assert windows[i][y - box.top, x - box.left] >= 0.25


# --- the seam metric ----------------------------------------------------------------------------------

def test_seam_ratio_sees_a_step_and_a_blur_and_passes_a_seamless_image():
    g = torch.Generator().manual_seed(0)
    size = (128, 192)
    tiling = Tiling(96, 16, rounds=1)
    border = tile_borders(size, tiling)
    noise = torch.rand(1, 3, *size, generator=g)
    assert seam_ratio(noise, border) == pytest.approx(1.0, abs=0.05)
    stepped = noise.clone() * 0.5
    boxes = tiling.boxes(size, 0)
    tops, lefts = sorted({b.top for b in boxes}), sorted({b.left for b in boxes})
    for box in boxes:  # tiles brightened in a checkerboard: a visible seam
        box.crop(stepped).add_(0.5 * ((tops.index(box.top) + lefts.index(box.left)) % 2))
    assert seam_ratio(stepped, border) > 1.1
    blurred = noise.clone()
    near = torch.nn.functional.max_pool2d(border[None, None].float(), 9, stride=1, padding=4)[0, 0] > 0
    blurred[..., near] = 0.5  # a flat band where textures were averaged away
    assert seam_ratio(blurred, border) < 0.9


# --- planning -----------------------------------------------------------------------------------------

def test_tiles_only_what_does_not_fit():
    plan = plan_scales((1536, 2048), 3, 10)
    budget = MODEL.scale_bytes((768, 1024), None, 10) + 1
    tiled = plan_tiles(plan, MODEL, budget)
    assert [s.tiling is None for s in tiled] == [True, True, False]
    assert scale_peak_bytes(tiled[-1], MODEL) <= budget
    assert plan_tiles(plan, MODEL, 2**50) == plan  # everything fits: nothing tiled
    forced = plan_tiles(plan, MODEL, 2**50, tile_size=600)
    assert [s.tiling is None for s in forced] == [True, False, False]
    with pytest.raises(PainterlyError, match="allow tiling or use --size"):
        plan_tiles(plan, MODEL, budget, tile_size=0)


def test_fit_tiling_refuses_when_even_small_tiles_do_not_fit():
    with pytest.raises(PainterlyError, match="even in 96 px tiles"):
        fit_tiling((3072, 4096), 10, MODEL, 600 * 2**20)
    # below the run's fixed part no size fits: the refusal names memory, not a size
    with pytest.raises(PainterlyError, match="no size fits in the 0.391 GiB available"):
        fit_tiling((3072, 4096), 10, MODEL, 400 * 2**20)


def test_round_iterations_spread():
    assert round_iterations(5, 2) == [3, 2]
    assert round_iterations(4, 2) == [2, 2]
    assert round_iterations(1, 3) == [1, 0, 0]


# --- Gatys, tiled -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def vgg():
    return FeatureExtractor.vgg19(last_layer="relu5_1", precision="fp32")


def test_tiled_gram_targets_match_the_whole_image(vgg):
    style = resize(as_tensor(EXAMPLES / "starry_night.jpg"), (240, 384))
    whole = masked_grams(vgg, style, LAYERS, [None])[0][0]
    errors = {}
    for tile in (128, 256):
        tiled = masked_grams(vgg, style, LAYERS, [None], Tiling(tile, 32, rounds=1))[0][0]
        errors[tile] = {l: float((tiled[l] - whole[l]).norm() / whole[l].norm()) for l in LAYERS}
    # the same statistics up to the tiles' border effects, which only the deepest layer notices and
    # which shrink as tiles grow (at 256 px relu5_1 sees 16 cells per tile; real tiles are >= 1000 px)
    assert all(errors[256][l] < 0.02 for l in LAYERS[:-1]), errors
    assert errors[256]["relu5_1"] < 0.1 and errors[256]["relu5_1"] < errors[128]["relu5_1"] / 2, errors
    style = style[..., :160, :256]
    half = torch.zeros(1, 1, 160, 256)
    half[..., :128] = 1
    (_, w_whole), (g_half, w_half) = masked_grams(vgg, style, ["relu1_1"], [None, half], Tiling(128, 32, rounds=1))
    assert w_half["relu1_1"] == pytest.approx(w_whole["relu1_1"] / 2, rel=0.02)
    direct = masked_grams(vgg, style[..., :128], ["relu1_1"], [None])[0][0]["relu1_1"]
    assert float((g_half["relu1_1"] - direct).norm() / direct.norm()) < 0.1


def _full_objective(vgg, config, content, style, image):
    targets = compute_targets(vgg, config, content, [style], tuple(image.shape[-2:]))
    with torch.no_grad():
        return GatysObjective(config)(image, vgg(image, config.layers), targets).floats()


def test_tiled_run_lowers_the_whole_image_loss_without_seams(vgg):
    content = as_tensor(EXAMPLES / "tubingen.jpg")
    style = as_tensor(EXAMPLES / "starry_night.jpg")
    config = GatysConfig(size=128, scales=1, iterations=10, seed=0, precision="fp32", tile_size=80, tile_overlap=16)
    plan = make_plan(GATYS, config, tuple(content.shape[-2:]), [tuple(style.shape[-2:])], "cpu", "fp32")
    tiling = plan[-1].tiling
    assert tiling is not None and tiling.tile_count(plan[-1].size) >= 6
    steps = []
    out = run(content, [style], config, extractor=vgg, callback=lambda info: steps.append(info))
    assert steps[-1].iteration == steps[-1].iterations == len(steps)
    before = _full_objective(vgg, config, content, style, resize(content, plan[-1].size))
    after = _full_objective(vgg, config, content, style, out)
    assert after["style"] < 0.5 * before["style"], (before, after)  # the tiles together stylised the image
    ratio = seam_ratio(out, tile_borders(plan[-1].size, tiling))
    assert 0.9 <= ratio <= 1.1, ratio


def test_tiled_run_resumes_mid_tile_exactly(tmp_path):
    tiny = FeatureExtractor.random(seed=0, last_layer="relu5_1", precision="fp32")
    g = torch.Generator().manual_seed(1)
    content, style = torch.rand(1, 3, 72, 96, generator=g), torch.rand(1, 3, 32, 32, generator=g)
    config = GatysConfig(size=96, iterations=4, coarse_iterations=3, scales=2, precision="fp32", seed=3,
                         style_weight=1e6, tile_size=64, tile_overlap=16)
    reference = run(content, [style], config, extractor=tiny)
    path = tmp_path / "run.ckpt"
    ckpt = Checkpointer(path, every=1, seconds=None)

    def stop(info):
        if info.scale == 1 and info.iteration == 5:  # inside the second tile of the first round
            ckpt.request_stop(signal.SIGINT)

    with pytest.raises(Interrupted):
        run(content, [style], config, extractor=tiny, checkpoint=ckpt, callback=stop)
    saved = read_checkpoint(path)["state"]
    assert tuple(saved["tile"]) == (0, 2) and saved["iteration"] == 1
    resumed = run(content, [style], config, extractor=tiny, checkpoint=Checkpointer(path, seconds=None, resume=True))
    assert torch.equal(resumed, reference)


def test_tiled_style_masks_keep_each_region_its_style(vgg):
    content = torch.full((1, 3, 96, 128), 0.5)
    red = torch.zeros(1, 3, 64, 64)
    red[:, 0] = 0.9
    red[:, 1:] = 0.1 + 0.2 * torch.rand(1, 2, 64, 64, generator=torch.Generator().manual_seed(0))
    blue = red[:, [2, 1, 0]]
    left = torch.zeros(1, 1, 96, 128)
    left[..., :64] = 1
    # shallow layers and a noise start: colour moves within a few iterations (as in test_gatys)
    config = GatysConfig(size=128, scales=1, iterations=30, seed=0, precision="fp32", tile_size=80,
                         content_layers=(), style_layers=("relu1_1", "relu2_1"), init="noise")
    out = run(content, [red, blue], config, style_masks=[left, 1 - left])
    r_left, b_left = float(out[0, 0, :, :48].mean()), float(out[0, 2, :, :48].mean())
    r_right, b_right = float(out[0, 0, :, 80:].mean()), float(out[0, 2, :, 80:].mean())
    assert r_left > b_left + 0.1 and b_right > r_right + 0.1, (r_left, b_left, r_right, b_right)


def test_config_checks_tiling_fields():
    with pytest.raises(PainterlyError, match="tile-size must not be negative"):
        GatysConfig(tile_size=-1)
    with pytest.raises(PainterlyError, match="tile-rounds"):
        GatysConfig(tile_rounds=0)
    with pytest.raises(PainterlyError, match="max-memory"):
        GatysConfig(max_memory=0)
    assert dataclasses.replace(GatysConfig(), scale_iterations=[3, 2]).scale_iterations == (3, 2)
