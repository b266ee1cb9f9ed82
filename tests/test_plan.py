"""Memory pre-flight and planning: the calibrated estimate, the FLOP time model, --dry-run, --size max."""

import re

import numpy as np
import pytest
from PIL import Image

import painterly.cli as cli
import painterly.schedule as schedule
from painterly import GatysConfig, StrotssConfig
from painterly.schedule import estimate_peak_bytes, estimate_seconds_per_iteration, largest_fitting_long_side, vgg_flops

LAYERS = GatysConfig().layers


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


@pytest.mark.parametrize("size, precision, measured_mib", [
    # benchmarks/memory_model.py, single scale, 2 L-BFGS iterations (docs/benchmarks.md)
    ((192, 256), "fp32", 595), ((384, 512), "fp32", 960), ((1536, 2048), "fp32", 6564),
    ((384, 512), "bf16", 828), ((1536, 2048), "bf16", 5042),
])
def test_estimate_matches_measured_peak_rss_within_15_percent(size, precision, measured_mib):
    predicted = estimate_peak_bytes(size, LAYERS, precision=precision, iterations=2) / 2**20
    assert predicted == pytest.approx(measured_mib, rel=0.15)


def test_estimate_counts_only_the_lbfgs_history_filled():
    short = estimate_peak_bytes((384, 512), LAYERS, iterations=2)
    full = estimate_peak_bytes((384, 512), LAYERS)
    assert full == estimate_peak_bytes((384, 512), LAYERS, iterations=500)
    # two float32 image vectors per pair, times the heap fragmentation measured below 32 MiB vectors
    assert full - short == pytest.approx(2 * (100 - 2) * 3 * 384 * 512 * 4 * 1.7, abs=2)
    big = (2000, 2000)  # 48 MB vectors: mmapped, no fragmentation
    assert (estimate_peak_bytes(big, LAYERS) - estimate_peak_bytes(big, LAYERS, iterations=2)
            == pytest.approx(2 * 98 * 3 * 2000 * 2000 * 4, abs=2))


@pytest.mark.parametrize("size, precision, measured_mib", [
    # benchmarks/memory_model.py with 120 iterations (full L-BFGS history)
    ((192, 256), "fp32", 819), ((192, 256), "bf16", 746), ((384, 512), "fp32", 1685),
])
def test_estimate_with_full_lbfgs_history_within_15_percent(size, precision, measured_mib):
    predicted = estimate_peak_bytes(size, LAYERS, precision=precision, iterations=120) / 2**20
    assert predicted == pytest.approx(measured_mib, rel=0.15)


def test_flop_model():
    # 2 x the forward convolutions to relu5_1: 284 GFLOP at 512x384 (the figure benchmarks print)
    assert vgg_flops((384, 512), LAYERS) / 1e9 == pytest.approx(284, rel=0.01)
    assert vgg_flops((768, 1024), LAYERS) == pytest.approx(4 * vgg_flops((384, 512), LAYERS))
    assert estimate_seconds_per_iteration((384, 512), LAYERS, "fp32") == pytest.approx(284e9 / 150e9, rel=0.01)
    assert estimate_seconds_per_iteration((384, 512), LAYERS, "bf16") == pytest.approx(284e9 / 300e9, rel=0.01)


def test_dry_run_prints_the_plan_and_does_nothing_else(images, capsys, no_stylize):
    code, out, err = run([images / "content.png", "--dry-run", "--size", "256", "--iterations", "30",
                          "--coarse-iterations", "10", "--scales", "2", "--precision", "fp32"], capsys)
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
    monkeypatch.setattr(schedule, "available_memory_bytes", lambda: 600 * 2**20)
    code, out, _ = run([images / "content.png", images / "style.png", "-o", images / "o.png", "--dry-run",
                        "--size", "1024", "--precision", "fp32"], capsys)
    assert code == 0
    assert "does NOT fit: a 1024x768 image needs more than the 0.6 GiB available even in 256 px tiles" in out
    code, out, _ = run([images / "content.png", "--dry-run", "--size", "1024", "--precision", "fp32",
                        "--tile-size", "0"], capsys)
    assert code == 0
    assert "does NOT fit: a 1024x768 image needs about" in out and "allow tiling or use --size" in out


def test_dry_run_shows_tiles_for_what_does_not_fit_whole(images, capsys, no_stylize, monkeypatch):
    monkeypatch.setattr(schedule, "available_memory_bytes", lambda: 20 * 2**30)
    code, out, _ = run([images / "content.png", "--dry-run", "--size", "4096", "--precision", "bf16",
                        "--max-memory", "10", "--scale-iterations", "100,100,50,20,4"], capsys)
    assert code == 0
    lines = out.strip().splitlines()
    assert "scale 4/5: 2048x1536, 20 iterations, ~" in lines[4]  # fits whole in 10 GiB
    assert re.match(r"  scale 5/5: 4096x3072, 4 iterations per tile in 2 round\(s\), \d+ tiles of up to \d+x\d+ "
                    r"with 128 px overlap", lines[5]), lines[5]
    peak = int(re.search(r"peak memory: (\d+) MiB", out).group(1))
    assert peak < 10 * 1024


def test_size_max_picks_the_largest_that_fits(images, capsys, no_stylize, monkeypatch):
    monkeypatch.setattr(schedule, "available_memory_bytes", lambda: 3 * 2**30)
    code, out, _ = run([images / "content.png", "--dry-run", "--size", "max", "--precision", "fp32",
                        "--iterations", "50"], capsys)
    assert code == 0
    expected = largest_fitting_long_side((300, 400), LAYERS, int(0.9 * 3 * 2**30), precision="fp32", iterations=50)
    h = round(300 * expected / 400)
    assert f"output {expected}x{h} (--size max" in out
    assert 500 < expected < 3000


def test_size_max_reaches_the_run(images, capsys, monkeypatch):
    monkeypatch.setattr(schedule, "available_memory_bytes", lambda: 2 * 2**30)
    seen = {}

    def fake_stylize(content, styles, *, config, callback, **kwargs):
        seen["config"] = config
        return Image.new("RGB", (8, 6))

    monkeypatch.setattr(cli, "stylize", fake_stylize)
    code, _, err = run([images / "content.png", images / "style.png", "-o", images / "o.png", "--size", "max",
                        "--precision", "bf16", "--iterations", "20"], capsys)
    assert code == 0, err
    expected = largest_fitting_long_side((300, 400), LAYERS, int(0.9 * 2 * 2**30), precision="bf16", iterations=20)
    assert seen["config"].size == expected
    assert f"--size max: {expected} px" in err


@pytest.mark.parametrize("argv, fragment", [
    (["--size", "huge"], "argument --size: invalid int value: 'huge'"),
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
    monkeypatch.setattr(schedule, "available_memory_bytes", lambda: 4 * 2**30)
    code, out, err = run([images / "content.png", "--method", "strotss", "--dry-run", "--precision", "fp32"], capsys)
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0] == "painterly plan: strotss, rmsprop, fp32 on cpu; output 512x384"
    assert [re.match(r"  scale (\d)/4: (\d+)x(\d+), 250 iterations, ~\d+\.\d\d s/iteration", l).group(2)
            for l in lines[1:5]] == ["64", "128", "256", "512"]
    peak = schedule.strotss_peak_bytes((384, 512), StrotssConfig().sorted_layers, precision="fp32")
    assert f"estimated peak memory: {peak / 2**20:.0f} MiB (4096 MiB free)" in lines[5]
    code, out, _ = run([images / "content.png", "--method", "strotss", "--dry-run", "--size", "max",
                        "--precision", "fp32"], capsys)
    best = largest_fitting_long_side((300, 400), StrotssConfig().sorted_layers, int(0.9 * 4 * 2**30),
                                     estimate=schedule.strotss_peak_bytes, precision="fp32")
    assert f"output {best}x" in out and 512 < best < 4000
    assert schedule.strotss_peak_bytes((round(300 * (best / 400)), best), StrotssConfig().sorted_layers,
                                       precision="fp32") <= 0.9 * 4 * 2**30


def test_resume_command_pins_size_max():
    assert cli._resume_command(["a.png", "b.png", "--size", "max", "-o", "o.png"], 1234) == \
        "painterly a.png b.png --size 1234 -o o.png --resume"
    assert cli._resume_command(["a.png", "--size=max", "--resume"], 99) == "painterly a.png --size=99 --resume"
    assert cli._resume_command(["a.png", "--size", "max"]) == "painterly a.png --size max --resume"
