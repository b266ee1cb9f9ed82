"""Coarse-to-fine scales, iteration plans, time shares and the memory pre-flight."""

import re

import pytest

from painterly.errors import PainterlyError
from painterly.methods.gatys import GatysMemory
from painterly.schedule import (
    MIN_AUTO_LONG_SIDE,
    Scale,
    estimate_peak_bytes,
    largest_fitting_long_side,
    plan_scales,
    plan_tiles,
    scale_peak_bytes,
    scale_sizes,
    time_shares,
)

LAYERS = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_2", "relu5_1"]
# A fixed budget, so that no test depends on the memory free on the machine running it.
BUDGET = 8 * 2**30


def _model(precision="fp32"):
    return GatysMemory(tuple(LAYERS), precision, "lbfgs", 100)


def _whole(precision="fp32"):
    """Peak bytes of a whole-image run of `size` with a full L-BFGS history (the default estimate)."""
    return lambda size: estimate_peak_bytes(size, LAYERS, precision=precision)


# --- scale_sizes -------------------------------------------------------------------------------


def test_scale_sizes_auto_512():
    assert scale_sizes((384, 512), None) == [(192, 256), (384, 512)]


def test_scale_sizes_auto_1024_portrait():
    assert scale_sizes((1024, 768), None) == [(256, 192), (512, 384), (1024, 768)]


def test_scale_sizes_auto_small_image_is_single_scale():
    assert scale_sizes((300, 200), None) == [(300, 200)]
    assert scale_sizes((64, 48), None) == [(64, 48)]


def test_scale_sizes_auto_keeps_coarsest_long_side_at_least_minimum():
    for final in [(320, 100), (384, 512), (1024, 768), (2000, 3000), (4096, 4096)]:
        sizes = scale_sizes(final, None)
        assert max(sizes[0]) >= MIN_AUTO_LONG_SIDE
        if len(sizes) > 1:
            # one more halving would have gone below the minimum
            assert max(sizes[0]) / 2 < MIN_AUTO_LONG_SIDE


@pytest.mark.parametrize("final,scales", [((384, 512), 3), ((1000, 600), 4), ((333, 517), 2)])
def test_scale_sizes_doubling_and_final_exact(final, scales):
    sizes = scale_sizes(final, scales)
    assert len(sizes) == scales
    assert sizes[-1] == final
    for (h0, w0), (h1, w1) in zip(sizes, sizes[1:]):
        assert abs(h1 - 2 * h0) <= 1 and abs(w1 - 2 * w0) <= 1


def test_scale_sizes_explicit_counts():
    assert scale_sizes((384, 512), 1) == [(384, 512)]
    assert scale_sizes((384, 512), 3) == [(96, 128), (192, 256), (384, 512)]
    assert scale_sizes((384, 512), 5)[0] == (24, 32)


def test_scale_sizes_too_many_scales_raises():
    with pytest.raises(PainterlyError, match="fewer scales"):
        scale_sizes((384, 512), 6)  # coarsest would be 16x12
    with pytest.raises(PainterlyError):
        scale_sizes((64, 64), 4)


def test_scale_sizes_zero_scales_raises():
    with pytest.raises(PainterlyError, match="at least 1"):
        scale_sizes((384, 512), 0)


# --- plan_scales -------------------------------------------------------------------------------


def test_plan_scales_default_iterations_everywhere():
    plan = plan_scales((384, 512), 2, 100)
    assert plan == [Scale(192, 256, 100), Scale(384, 512, 100)]
    assert plan[-1].size == (384, 512)


def test_plan_scales_coarse_iterations():
    plan = plan_scales((384, 512), 3, 200, coarse_iterations=50)
    assert [s.iterations for s in plan] == [50, 50, 200]
    assert [s.size for s in plan] == [(96, 128), (192, 256), (384, 512)]
    assert [s.iterations for s in plan_scales((384, 512), 2, 10, coarse_iterations=0)] == [0, 10]


def test_plan_scales_single_scale_and_auto():
    assert plan_scales((100, 80), 1, 7, coarse_iterations=3) == [Scale(100, 80, 7)]
    assert [s.size for s in plan_scales((384, 512), None, 5)] == [(192, 256), (384, 512)]


def test_plan_scales_negative_iterations_raises():
    with pytest.raises(PainterlyError, match="iterations"):
        plan_scales((384, 512), 1, -1)


# --- time_shares -------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_time_shares_sum_to_one_and_final_gets_half(n):
    plan = [Scale(16 * 2**k, 16 * 2**k, 10) for k in range(n)]
    shares = time_shares(plan)
    assert len(shares) == n
    assert sum(shares) == pytest.approx(1.0)
    assert shares[-1] == pytest.approx(1.0 if n == 1 else 0.5)
    assert all(s > 0 for s in shares)


def test_time_shares_hand_computed():
    plan = plan_scales((384, 512), 3, 10)
    assert time_shares(plan) == pytest.approx([0.25, 0.25, 0.5])


# --- memory estimate ---------------------------------------------------------------------------


def test_estimate_grows_with_size():
    sizes = [(64, 64), (256, 256), (512, 512), (1024, 1024)]
    values = [estimate_peak_bytes(s, LAYERS) for s in sizes]
    assert values == sorted(values) and len(set(values)) == len(values)
    # Above the fixed base, memory is roughly proportional to the pixel count.
    base = estimate_peak_bytes((1, 1), LAYERS)
    assert (values[3] - base) / (values[2] - base) == pytest.approx(4.0, rel=0.01)


def test_estimate_fp32_above_bf16_and_lbfgs_above_adam():
    size = (512, 512)
    assert estimate_peak_bytes(size, LAYERS, precision="fp32") > estimate_peak_bytes(size, LAYERS, precision="bf16")
    assert estimate_peak_bytes(size, LAYERS, optimizer="lbfgs") > estimate_peak_bytes(size, LAYERS, optimizer="adam")
    assert (estimate_peak_bytes(size, LAYERS, lbfgs_history=100)
            > estimate_peak_bytes(size, LAYERS, lbfgs_history=10))


def test_estimate_grows_with_deepest_layer():
    shallow = estimate_peak_bytes((256, 256), ["relu1_1"])
    deep = estimate_peak_bytes((256, 256), ["relu1_1", "relu5_1"])
    assert deep > shallow
    # Only the deepest layer matters: the network runs up to it whatever else is asked for.
    assert estimate_peak_bytes((256, 256), ["relu5_1"]) == deep


def test_estimate_is_an_int_and_sane():
    value = estimate_peak_bytes((512, 512), LAYERS)
    assert isinstance(value, int)
    assert 2**29 < value < 2**33  # between 0.5 and 8 GiB for a 512 px run


@pytest.mark.parametrize("aspect", [(3, 4), (4, 3), (1, 1), (9, 16)])
@pytest.mark.parametrize("target", [(600, 800), (300, 1000)])
def test_largest_fitting_long_side_consistent_with_estimate(aspect, target):
    budget = estimate_peak_bytes(target, LAYERS)
    side = largest_fitting_long_side(aspect, budget, _whole())
    h, w = aspect

    def size_for(long_side):
        s = long_side / max(h, w)
        return round(h * s), round(w * s)

    assert estimate_peak_bytes(size_for(side), LAYERS) <= budget
    assert estimate_peak_bytes(size_for(side + 1), LAYERS) > budget


def test_largest_fitting_long_side_follows_the_estimate_it_is_given():
    budget = estimate_peak_bytes((512, 512), LAYERS, precision="fp32")
    fp32 = largest_fitting_long_side((1, 1), budget, _whole("fp32"))
    bf16 = largest_fitting_long_side((1, 1), budget, _whole("bf16"))
    assert fp32 == 512
    assert bf16 > fp32


def test_pre_flight_passes_a_small_size_whole():
    plan = [Scale(64, 64, 10)]
    model = _model()
    assert plan_tiles(plan, model, BUDGET, tile_size=0) == plan
    assert scale_peak_bytes(plan[0], model) == estimate_peak_bytes((64, 64), LAYERS, iterations=10)


def test_pre_flight_refuses_an_absurd_size_with_size_hint():
    with pytest.raises(PainterlyError, match="--size") as info:
        plan_tiles([Scale(60000, 80000, 10)], _model(), BUDGET, tile_size=0)
    message = str(info.value)
    assert "80000x60000" in message and "GiB" in message
    hint = int(message.rsplit("--size", 1)[1].split()[0])
    assert 16 <= hint < 80000


def test_an_explicit_tile_size_too_big_for_memory_is_refused_naming_one_that_fits():
    """--tile-size N where N px tiles (or a scale shorter than N, run whole) do not fit the budget: one line
    naming the largest tile size that does, which then plans within the budget; a tile size that fits is kept."""
    model, size = _model(), Scale(3000, 4000, 10)
    budget = 3 * 2**30
    kept = plan_tiles([size], model, budget, tile_size=512, rounds=1)[0]
    assert kept.tiling.tile == 512 and scale_peak_bytes(kept, model) <= budget
    for tile, how in ((3000, "in tiles of 3000 px"), (5000, "whole (--tile-size 5000 is over its size)")):
        with pytest.raises(PainterlyError, match=re.escape(how)) as info:
            plan_tiles([size], model, budget, tile_size=tile, rounds=1)
        message = str(info.value)
        assert "\n" not in message and "4000x3000" in message
        hint = int(message.rsplit("--tile-size", 1)[1].split()[0])
        fitted = plan_tiles([size], model, budget, tile_size=hint, rounds=1)[0]
        assert 256 <= hint < 3000 and scale_peak_bytes(fitted, model) <= budget
