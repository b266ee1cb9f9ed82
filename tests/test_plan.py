"""Memory pre-flight and planning: the memory model's properties, the FLOP time model, --dry-run, --size max.

Whether the memory model agrees with measured peak RSS is for benchmarks/memory_model.py; here it is
checked for what the planner relies on: it grows with the size, bf16 needs no more than fp32, tiles
need less than the whole image, and a refusal names a size that then fits.
"""

import dataclasses
import re

import numpy as np
import pytest
from PIL import Image

import painterly
import painterly.cli as cli
import painterly.hardware as hardware
from painterly import GatysConfig, StrotssConfig
from painterly.driver import make_plan
from painterly.errors import PainterlyError
from painterly.image import fit_long_side
from painterly.methods.gatys import GATYS, GatysMemory
from painterly.methods.strotss import STROTSS
from painterly.schedule import (HEAP_FRAGMENTATION, MMAP_THRESHOLD_MAX, estimate_peak_bytes,
                                estimate_seconds_per_iteration, largest_fitting_long_side, scale_peak_bytes,
                                vgg_flops)
from painterly.tiling import choose_tiling

LAYERS = GatysConfig().layers
# Long sides from a thumbnail to print size, 4:3.
LONG_SIDES = [64, 128, 256, 512, 768, 1024, 1536, 2048, 3072, 4096, 6144]


def _model(precision="fp32", optimizer="lbfgs", history=100):
    return GatysMemory(tuple(LAYERS), precision, optimizer, history)


def _whole(model, long_side, iterations):
    return model.scale_bytes(fit_long_side(3, 4, long_side), None, iterations)


@pytest.fixture
def images(tmp_path):
    a = np.zeros((300, 400, 3), np.uint8)
    a[..., 0] = np.linspace(0, 255, 400, dtype=np.uint8)[None]
    Image.fromarray(a).save(tmp_path / "content.png")
    Image.fromarray(255 - a).save(tmp_path / "style.png")
    return tmp_path


@pytest.fixture
def no_stylize(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("stylize must not be called")

    monkeypatch.setattr(cli, "stylize", forbidden)


def run(argv, capsys):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _grows(values) -> bool:
    return all(a < b for a, b in zip(values, values[1:]))


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_whole_estimate_grows_with_the_size(precision):
    """Every long side from 16 to 6144 px (4:3) needs more than the one before, for Adam; for L-BFGS
    on each side of the mmap threshold. Across it the L-BFGS estimate drops: image vectors of
    MMAP_THRESHOLD_MAX bytes or more are mmapped and lose the heap fragmentation factor (at 4:3,
    from 1932 px: 1931 px with a full history is estimated at 16.5 GiB, 1932 px at 12.2 GiB)."""
    sizes = [fit_long_side(3, 4, side) for side in range(16, 6145)]
    adam = _model(precision, "adam")
    assert _grows([adam.scale_bytes(size, None, 200) for size in sizes])
    below = [size for size in sizes if 12 * size[0] * size[1] < MMAP_THRESHOLD_MAX]
    above = sizes[len(below):]
    assert len(below) > 1000 and len(above) > 1000
    for iterations in (1, 20, 200):  # the history filled: 1, 20 and all 100 pairs
        lbfgs = _model(precision, "lbfgs")
        assert _grows([lbfgs.scale_bytes(size, None, iterations) for size in below]), iterations
        assert _grows([lbfgs.scale_bytes(size, None, iterations) for size in above]), iterations


@pytest.mark.parametrize("optimizer,iterations", [("adam", 200), ("lbfgs", 2), ("lbfgs", 200)])
def test_bf16_estimate_is_never_above_fp32(optimizer, iterations):
    for side in LONG_SIDES:
        assert (_whole(_model("bf16", optimizer), side, iterations)
                <= _whole(_model("fp32", optimizer), side, iterations)), side


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("tile", [256, 512, 1024])
def test_tiled_estimate_is_below_the_whole_one_for_a_large_size(precision, tile):
    size = fit_long_side(3, 4, 4096)
    model = _model(precision)
    tiling = choose_tiling(tile, None, 2)
    assert model.scale_bytes(size, tiling, 100) < model.scale_bytes(size, None, 100)
    # and a tile costs less the smaller it is
    assert model.scale_bytes(size, choose_tiling(tile // 2, None, 2), 100) < model.scale_bytes(size, tiling, 100)


@pytest.mark.parametrize("method,config", [
    ("gatys", GatysConfig(size=4096, scales=1, iterations=50, precision="fp32", tile_size=0, max_memory=2.0)),
    ("gatys", GatysConfig(size=3000, iterations=50, precision="bf16", tile_size=0, max_memory=1.5)),
    ("strotss", StrotssConfig(size=4096, precision="fp32", tile_size=0, max_memory=2.0)),
])
def test_a_refusal_names_a_size_that_then_fits(method, config):
    """tile_size 0 (never tile): the refusal's '--size N' is a size whose whole estimate fits the
    budget, and planning at N succeeds; at twice N it would not have fitted."""
    recipe = {"gatys": GATYS, "strotss": STROTSS}[method]
    content_hw, style_hws = (3000, 4000), [(3000, 4000)]
    budget = int(config.max_memory * 2**30)
    with pytest.raises(PainterlyError, match="allow tiling or use --size") as exc:
        make_plan(recipe, config, content_hw, style_hws, "cpu", config.precision)
    best = int(re.search(r"use --size (\d+) or less", str(exc.value)).group(1))
    model = recipe.memory(config, style_hws, config.precision)
    final = recipe.scales(config, fit_long_side(*content_hw, best))[-1]
    assert model.scale_bytes(final.size, None, final.iterations) <= budget
    plan = make_plan(recipe, dataclasses.replace(config, size=best), content_hw, style_hws, "cpu", config.precision)
    assert plan[-1].size == final.size and all(s.tiling is None for s in plan)
    assert model.scale_bytes(fit_long_side(*content_hw, 2 * best), None, final.iterations) > budget


def test_a_refusal_even_in_tiles_names_a_size_that_then_fits():
    """Auto tiling that cannot fit even its smallest tiles names the largest size it could plan."""
    config = GatysConfig(size=20000, scales=1, iterations=20, precision="fp32", max_memory=1.0)
    with pytest.raises(PainterlyError, match="even in 96 px tiles") as exc:
        make_plan(GATYS, config, (3000, 4000), [(3000, 4000)], "cpu", "fp32")
    best = int(re.search(r"the largest size that fits is about --size (\d+)", str(exc.value)).group(1))
    assert 256 < best < 20000
    plan = make_plan(GATYS, dataclasses.replace(config, size=best), (3000, 4000), [(3000, 4000)], "cpu", "fp32")
    assert max(plan[-1].size) == best and plan[-1].tiling is not None
    model = GATYS.memory(config, [(3000, 4000)], "fp32")
    assert all(scale_peak_bytes(s, model) <= 2**30 for s in plan)


@pytest.mark.parametrize("tile_size", [None, 0])
def test_a_budget_below_the_fixed_part_names_the_memory_that_fits_not_a_size(tile_size):
    """Under the run's fixed part (model, heap) no size fits, tiled or (--tile-size 0) whole; the refusal
    names a --max-memory that does instead of a size that would be refused the same way."""
    config = GatysConfig(size=1024, scales=1, iterations=20, precision="fp32", max_memory=0.05, tile_size=tile_size)
    with pytest.raises(PainterlyError, match="no size fits in the 0.05 GiB available") as exc:
        make_plan(GATYS, config, (768, 1024), [(768, 1024)], "cpu", "fp32")
    enough = float(re.search(r"give --max-memory ([0-9.]+) or more", str(exc.value)).group(1))
    small = dataclasses.replace(config, max_memory=enough, size=64)
    assert max(make_plan(GATYS, small, (768, 1024), [(768, 1024)], "cpu", "fp32")[-1].size) == 64
    # and no more than it takes: --tile-size 0 asked 0.1 GiB more, for a 90% rule its check does not apply
    with pytest.raises(PainterlyError, match="no size fits"):
        make_plan(GATYS, dataclasses.replace(small, max_memory=enough - 0.1), (768, 1024), [(768, 1024)], "cpu", "fp32")
    assert "90%" not in str(exc.value)


def test_estimate_counts_only_the_lbfgs_history_filled():
    short = estimate_peak_bytes((384, 512), LAYERS, iterations=2)
    full = estimate_peak_bytes((384, 512), LAYERS)
    assert full == estimate_peak_bytes((384, 512), LAYERS, iterations=500)
    # two float32 image vectors per pair, times the heap fragmentation below 32 MiB vectors
    assert full - short == pytest.approx(2 * (100 - 2) * 3 * 384 * 512 * 4 * HEAP_FRAGMENTATION, abs=2)
    big = (2000, 2000)  # 48 MB vectors: mmapped, no fragmentation
    assert (estimate_peak_bytes(big, LAYERS) - estimate_peak_bytes(big, LAYERS, iterations=2)
            == pytest.approx(2 * 98 * 3 * 2000 * 2000 * 4, abs=2))


def test_flop_model():
    # 2 x the forward convolutions to relu5_1: 284 GFLOP at 512x384 (the figure benchmarks print)
    assert vgg_flops((384, 512), LAYERS) / 1e9 == pytest.approx(284, rel=0.01)
    assert vgg_flops((768, 1024), LAYERS) == pytest.approx(4 * vgg_flops((384, 512), LAYERS))
    assert estimate_seconds_per_iteration((384, 512), LAYERS, "fp32") == pytest.approx(284e9 / 150e9, rel=0.01)
    assert estimate_seconds_per_iteration((384, 512), LAYERS, "bf16") == pytest.approx(284e9 / 300e9, rel=0.01)


def test_dry_run_prints_the_plan_and_does_nothing_else(images, capsys, no_stylize):
    code, out, err = run([images / "content.png", "--dry-run", "--size", "256", "--iterations", "30",
                          "--coarse-iterations", "10", "--scales", "2", "--precision", "fp32", "--device", "cpu"],
                         capsys)
    assert code == 0, err
    assert err == ""
    lines = out.strip().splitlines()
    assert lines[0].startswith("painterly plan: gatys, lbfgs, fp32 on cpu; output 256x192")
    assert re.fullmatch(r"  scale 1/2: 128x96, 10 iterations, ~\d+\.\d\d s/iteration", lines[1]), lines[1]
    assert re.fullmatch(r"  scale 2/2: 256x192, 30 iterations, ~\d+\.\d\d s/iteration", lines[2]), lines[2]
    peak = estimate_peak_bytes((192, 256), LAYERS, precision="fp32", iterations=30)
    assert f"estimated peak memory: {peak / 2**20:.0f} MiB" in lines[3]
    assert "estimated time: ~" in lines[4] and "150 GFLOP/s fp32" in lines[4]
    assert sorted(p.name for p in images.iterdir()) == ["content.png", "style.png"]


def test_dry_run_warns_when_it_does_not_fit(images, capsys, no_stylize, monkeypatch):
    """The plan is printed and the status is 2, as the run that would refuse it (a script that checks
    with --dry-run first was told 0)."""
    monkeypatch.setattr(hardware, "available_memory_bytes", lambda: 600 * 2**20)
    code, out, _ = run([images / "content.png", images / "style.png", "-o", images / "o.png", "--dry-run",
                        "--size", "1024", "--precision", "fp32", "--device", "cpu"], capsys)
    assert code == 2
    assert "does NOT fit: a 1024x768 image needs about" in out and "even in 96 px tiles" in out and "over the 0.586 GiB available" in out
    code, out, _ = run([images / "content.png", "--dry-run", "--size", "1024", "--precision", "fp32", "--device", "cpu",
                        "--tile-size", "0"], capsys)
    assert code == 2
    assert "does NOT fit: a 1024x768 image needs about" in out and "allow tiling or use --size" in out


def test_dry_run_shows_tiles_for_what_does_not_fit_whole(images, capsys, no_stylize, monkeypatch):
    monkeypatch.setattr(hardware, "available_memory_bytes", lambda: 20 * 2**30)
    code, out, _ = run([images / "content.png", "--dry-run", "--size", "4096", "--precision", "bf16", "--device", "cpu",
                        "--max-memory", "10", "--scale-iterations", "100,100,50,20,4"], capsys)
    assert code == 0
    lines = out.strip().splitlines()
    assert "scale 4/5: 2048x1536, 20 iterations, ~" in lines[4]  # fits whole in 10 GiB
    assert re.match(r"  scale 5/5: 4096x3072, 4 iterations per tile in 2 round\(s\), \d+ tiles of up to \d+x\d+ "
                    r"with 128 px overlap", lines[5]), lines[5]
    peak = int(re.search(r"peak memory: (\d+) MiB", out).group(1))
    assert peak < 10 * 1024


def test_size_max_picks_the_largest_that_fits(images, capsys, no_stylize, monkeypatch):
    monkeypatch.setattr(hardware, "available_memory_bytes", lambda: 3 * 2**30)
    code, out, _ = run([images / "content.png", "--dry-run", "--size", "max", "--precision", "fp32", "--device", "cpu",
                        "--iterations", "50"], capsys)
    assert code == 0
    model = _model("fp32")
    expected = largest_fitting_long_side((300, 400), int(0.9 * 3 * 2**30),
                                         lambda size: model.scale_bytes(size, None, 50))
    h = round(300 * expected / 400)
    assert f"output {expected}x{h} (--size max" in out
    assert 500 < expected < 3000


def test_size_max_reaches_the_run(images, capsys, monkeypatch):
    monkeypatch.setattr(hardware, "available_memory_bytes", lambda: 2 * 2**30)
    seen = {}

    def fake_stylize(content, styles, *, config, callback, **kwargs):
        seen["config"] = config
        return Image.new("RGB", (8, 6))

    monkeypatch.setattr(cli, "stylize", fake_stylize)
    code, _, err = run([images / "content.png", images / "style.png", "-o", images / "o.png", "--size", "max",
                        "--precision", "bf16", "--device", "cpu", "--iterations", "20"], capsys)
    assert code == 0, err
    model = _model("bf16")
    expected = largest_fitting_long_side((300, 400), int(0.9 * 2 * 2**30),
                                         lambda size: model.scale_bytes(size, None, 20))
    assert seen["config"].size == expected
    assert f"--size max: {expected} px" in err


@pytest.mark.parametrize("argv, fragment", [
    (["--size", "huge"], "argument --size: 'huge' is not a whole number or 'max'"),
])
def test_plan_errors_are_one_line(images, capsys, no_stylize, argv, fragment):
    code, _, err = run([images / "content.png", images / "style.png", "-o", images / "o.png", *argv], capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and fragment in err, err


def test_strotss_refuses_what_does_not_fit(images, capsys):
    code, _, err = run([images / "content.png", images / "style.png", "-o", images / "o.png", "--method", "strotss",
                        "--size", "60000"], capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "the largest size that fits is about --size" in err, err
    assert not (images / "o.png").exists()


def test_strotss_dry_run_and_size_max(images, capsys, no_stylize, monkeypatch):
    monkeypatch.setattr(hardware, "available_memory_bytes", lambda: 4 * 2**30)
    code, out, err = run([images / "content.png", "--method", "strotss", "--dry-run", "--precision", "fp32",
                          "--device", "cpu"], capsys)
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0] == "painterly plan: strotss, rmsprop, fp32 on cpu; output 512x384"
    assert [re.match(r"  scale (\d)/4: (\d+)x(\d+), 250 iterations, ~\d+\.\d\d s/iteration", l).group(2)
            for l in lines[1:5]] == ["64", "128", "256", "512"]
    model = STROTSS.memory(StrotssConfig(), [(300, 400)], "fp32")  # the plan assumes a style shaped like the content
    peak = model.scale_bytes((384, 512), None, 250)
    assert f"estimated peak memory: {peak / 2**20:.0f} MiB (4096 MiB free)" in lines[5]
    code, out, _ = run([images / "content.png", "--method", "strotss", "--dry-run", "--precision", "fp32",
                        "--device", "cpu", "--max-memory", "0.5"], capsys)  # the memory the plan fits in
    assert f"estimated peak memory: {peak / 2**20:.0f} MiB (512 MiB allowed by --max-memory)" in out
    code, out, _ = run([images / "content.png", "--method", "strotss", "--dry-run", "--size", "max",
                        "--precision", "fp32", "--device", "cpu"], capsys)
    best = largest_fitting_long_side((300, 400), int(0.9 * 4 * 2**30), lambda size: model.scale_bytes(size, None, 250))
    assert f"output {best}x" in out and 512 < best < 4000
    assert model.scale_bytes((round(300 * (best / 400)), best), None, 250) <= 0.9 * 4 * 2**30


def test_resume_command_pins_size_max():
    assert cli._resume_command(["a.png", "b.png", "--size", "max", "-o", "o.png"], 1234) == \
        "painterly a.png b.png --size 1234 -o o.png --resume"
    assert cli._resume_command(["a.png", "--size=max", "--resume"], 99) == "painterly a.png --size=99 --resume"
    assert cli._resume_command(["a.png", "--size", "max"]) == "painterly a.png --size max --resume"


def test_size_max_in_the_api_and_a_batch_is_the_largest_that_fits(tmp_path):
    """size="max" is not the CLI's alone: stylize() and each batch job pick the content's largest size
    that fits (a batch job given it was refused: "size must be a whole number")."""
    from painterly.batch import BatchJob, check_jobs, run_job

    photo = tmp_path / "photo.png"
    Image.new("RGB", (40, 30), (120, 160, 90)).save(photo)
    options = dict(model="starry_night", max_memory=0.5, device="cpu", precision="fp32")
    expected = painterly.largest_size(photo, method="network", **options)
    assert 100 < expected < 2000  # half a GiB: well above the photo, well below free memory
    with pytest.raises(PainterlyError, match=r"no size fits in the .* GiB available: .*\(give --max-memory \d"):
        painterly.stylize(photo, size="max", **{**options, "max_memory": 0.25})
    picture = painterly.stylize(photo, size="max", **options)
    assert max(picture.size) == expected
    thin = tmp_path / "thin.png"
    Image.new("RGB", (1200, 40), (120, 160, 90)).save(thin)  # the long side that fits leaves a sliver
    # no sliver: the plan reads a style shaped like the picture, which needs 16 px a side too
    best = painterly.largest_size(thin, method="gatys", max_memory=0.6, precision="fp32", iterations=1, device="cpu")
    assert 480 <= best and min(fit_long_side(40, 1200, best)) >= 16
    job = BatchJob("photo", str(photo), (), str(tmp_path / "out.png"), {**options, "size": " Max "})
    assert run_job(check_jobs([job])[0]).status == "done"
    assert max(Image.open(tmp_path / "out.png").size) == expected


def test_plan_takes_size_max_as_stylize_does():
    """plan(size="max") was refused ("size must be a whole number") where stylize() and preflight() took it."""
    options = dict(model="starry_night", max_memory=0.5, device="cpu", precision="fp32")
    expected = painterly.largest_size((300, 400), method="network", **options)
    assert max(painterly.plan((300, 400), size="max", **options).scales[-1].size) == expected


def test_max_memory_above_the_free_memory_plans_within_the_free_memory(monkeypatch):
    """--max-memory is the most a run may use, not a promise of memory: above what is free (8192 px at
    --max-memory 100 planned a 57 GiB peak with 21 GiB free, a run killed hours in) the plan keeps to
    the free memory, as without it; below, to the limit."""
    monkeypatch.setattr(hardware, "available_memory_bytes", lambda: 4 * 2**30)
    free = painterly.plan((3072, 4096), size=4096, precision="fp32")
    above = painterly.plan((3072, 4096), size=4096, precision="fp32", max_memory=100)
    below = painterly.plan((3072, 4096), size=4096, precision="fp32", max_memory=3)
    assert not above.problem and free.scales[-1].tiling is not None and above.peak_bytes <= 4 * 2**30
    assert above.describe() == free.describe()
    assert not below.problem and below.peak_bytes <= 3 * 2**30 < free.peak_bytes


def test_a_large_style_scale_counts_the_style_pass_in_the_plan(monkeypatch):
    """The style is read whole at the scale's pixels times style_scale squared: at 128 px with
    style_scale 16 the plan said 546 MiB and the run took 2.6 GiB (a 2048x1536 style's features). The
    plan now counts that pass, so it tiles (the style then read in tiles) or refuses in time."""
    from painterly.schedule import style_pass_bytes

    monkeypatch.setattr(hardware, "available_memory_bytes", lambda: 64 * 2**30)
    plain = painterly.plan((96, 128), size=128, precision="fp32")
    large = painterly.plan((96, 128), size=128, precision="fp32", style_scale=16)
    assert large.peak_bytes >= 2.6 * 2**30 > plain.peak_bytes
    layers = GatysConfig().style_layers
    assert large.peak_bytes == style_pass_bytes((96, 128), layers, 16.0)
    monkeypatch.setattr(hardware, "available_memory_bytes", lambda: 2 * 2**30)
    tight = painterly.plan((96, 128), size=128, precision="fp32", style_scale=16)
    assert not tight.problem and tight.scales[-1].tiling is not None and tight.peak_bytes <= 2 * 2**30


def test_a_picture_just_over_the_budget_runs_in_tiles_smaller_than_the_usual_smallest():
    """256x192 in --max-memory 0.55 was refused ("even in 256 px tiles", its one tile itself) while 300x225 and
    592 px ran tiled in the same budget: it now takes smaller tiles, as larger pictures' tiles are."""
    from painterly.schedule import MIN_AUTO_TILE

    recipe, config = painterly.get_method("gatys"), GatysConfig(size=256, scales=1, iterations=5, precision="fp32")
    whole = recipe.memory(config, [(192, 256)], "fp32").scale_bytes((192, 256), None, 5)
    plan = make_plan(recipe, config, (192, 256), [(192, 256)], "cpu", "fp32", budget=whole - 2 * 2**20)
    assert plan[0].tiling is not None and plan[0].tiling.tile < MIN_AUTO_TILE
    larger = make_plan(recipe, dataclasses.replace(config, size=300), (192, 256), [(192, 256)], "cpu", "fp32",
                       budget=whole - 2 * 2**20)
    assert larger[0].tiling is not None  # as before
    # a given overlap bounds the tiles from below (4x it): the search stops there instead of failing on it
    overlapped = make_plan(recipe, dataclasses.replace(config, tile_overlap=48), (192, 256), [(192, 256)], "cpu",
                           "fp32", budget=whole - 2 * 2**20)
    assert overlapped[0].tiling is not None and 4 * 48 <= overlapped[0].tiling.tile < MIN_AUTO_TILE


def test_a_picture_that_fits_only_in_small_tiles_takes_them_rather_than_a_smaller_size():
    """384x288 in 0.5 GiB was refused for "--size 166" though 96 px tiles run it; a refused --tile-size named
    no tile size that fits, and one under 4x the overlap was told a size (3 px) refused in its turn."""
    from painterly.schedule import MIN_AUTO_TILE

    recipe, config = painterly.get_method("gatys"), GatysConfig(size=384, scales=1, iterations=2, precision="bf16")
    model = recipe.memory(config, [(288, 384)], "bf16")
    budget = model.scale_bytes((288, 384), plan_tiling_of(MIN_AUTO_TILE), 1) - 2**20  # under 256 px tiles
    plan = make_plan(recipe, config, (288, 384), [(288, 384)], "cpu", "bf16", budget=budget)
    assert plan[0].size == (288, 384) and plan[0].tiling.tile < MIN_AUTO_TILE
    assert scale_peak_bytes(plan[0], model) <= budget
    with pytest.raises(PainterlyError, match=r"use --tile-size (\d+) or less") as refused:
        make_plan(recipe, dataclasses.replace(config, tile_size=MIN_AUTO_TILE), (288, 384), [(288, 384)], "cpu", "bf16",
                  budget=budget)
    named = int(re.search(r"--tile-size (\d+) or less", str(refused.value)).group(1))
    assert make_plan(recipe, dataclasses.replace(config, tile_size=named), (288, 384), [(288, 384)], "cpu", "bf16",
                     budget=budget)[0].tiling.tile <= named
    # under even 96 px tiles' need: the size named is one the same ladder of tiles fits (it named 88 px
    # from 256 px tiles alone where 214 px fits)
    lower = model.scale_bytes((288, 384), plan_tiling_of(96), 1) - 2**20
    with pytest.raises(PainterlyError, match=r"even in 96 px tiles") as refused:
        make_plan(recipe, config, (288, 384), [(288, 384)], "cpu", "bf16", budget=lower)
    best = int(re.search(r"about --size (\d+)", str(refused.value)).group(1))
    fitted = make_plan(recipe, dataclasses.replace(config, size=best), (288, 384), [(288, 384)], "cpu", "bf16",
                       budget=lower)
    assert 150 < best < 384 and all(scale_peak_bytes(s, model) <= lower for s in fitted)
    for tiny in (1, 10):
        with pytest.raises(PainterlyError, match=r"^--tile-size must be at least 64"):
            make_plan(recipe, dataclasses.replace(config, tile_size=tiny), (288, 384), [(288, 384)], "cpu", "bf16")


def plan_tiling_of(tile):
    from painterly.schedule import plan_tiling
    return plan_tiling(tile, None, 2)


def test_dry_run_refuses_what_the_run_would_beyond_the_content(images, capsys, no_stylize):
    """--dry-run read the content alone and exited 0 for a run that would be refused at once: a style that is
    no image, a mask of another count, an output it cannot write. Without them it plans as before."""
    (images / "fake.png").write_bytes(b"not a png")
    cases = [([images / "fake.png", "-o", images / "o.png"], "style image"),
             ([images / "style.png", "-o", images / "missing" / "o.png"], "output folder"),
             ([images / "style.png", "-o", images / "o.xyz"], "unknown extension"),
             ([images / "style.png", images / "style.png", "--style-mask", images / "style.png", "-o",
               images / "o.png"], "mask")]
    for words, fragment in cases:
        code, out, err = run([images / "content.png", *words, "--dry-run", "--size", "64"], capsys)
        assert code == 2 and fragment in err and len(err.strip().splitlines()) == 1, err
    code, out, _ = run([images / "content.png", "--dry-run", "--size", "64"], capsys)
    assert code == 0 and "estimated peak memory" in out
    assert not (images / "o.png").exists()


def test_a_picture_too_large_for_adain_is_told_the_size_that_fits_not_a_tiny_styles_refusal():
    """AdaIN's style, read at the output's pixel count, is under VGG's 16 px at a 16 px output: the search
    for the largest size that fits probed there, and its refusal was the plan's answer to a 65536 px picture
    ("a style image 18x11 px for a 16x12 output")."""
    from painterly.schedule import least_long_side

    planned = painterly.plan((3000, 4000), method="adain", size=65536, max_memory=4, precision="fp32", device="cpu")
    assert "even in 96 px tiles" in planned.problem and "the largest size that fits is about --size" in planned.problem
    assert "style image" not in planned.problem
    recipe = painterly.get_method("adain")
    model = recipe.memory(painterly.make_config("adain", precision="fp32"), [(3000, 4000)], "fp32")
    least = least_long_side((3000, 4000), lambda hw: model.scale_bytes(hw, None, 1))
    assert least > 16
    with pytest.raises(painterly.PainterlyError, match="style image"):
        model.scale_bytes((12, 16), None, 1)
