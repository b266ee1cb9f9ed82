"""What the process may use: CPUs from affinity and cgroup quota, memory under a cgroup limit (so a
run that would be OOM-killed in a container is tiled instead), native bf16, devices."""

from __future__ import annotations

import os

import pytest
import torch

from painterly import hardware
from painterly.driver import make_plan
from painterly.errors import PainterlyError
from painterly.methods.gatys import GATYS, GatysConfig


def _cgroup(tmp_path, **files):
    d = tmp_path / "cg"
    d.mkdir(exist_ok=True)
    for name, text in files.items():
        (d / name.replace("_", ".")).write_text(text)
    return [d]


def test_usable_cpus_is_capped_by_a_cgroup_quota(tmp_path):
    affinity = len(os.sched_getaffinity(0))
    assert hardware.usable_cpus(_cgroup(tmp_path, cpu_max="max 100000")) == affinity
    assert hardware.usable_cpus(_cgroup(tmp_path, cpu_max="50000 100000")) == 1       # half a CPU -> 1 thread
    assert hardware.usable_cpus(_cgroup(tmp_path, cpu_max=f"{150000 * 64} 100000")) == affinity  # quota above the mask


def test_usable_cpus_follows_the_affinity_mask(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    assert hardware.usable_cpus([]) == 1


def test_set_threads_defaults_to_usable_cpus(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.setattr(hardware, "usable_cpus", lambda dirs=None: 2)
        assert hardware.set_threads(None) == 2 and torch.get_num_threads() == 2
        assert hardware.set_threads(1) == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_more_threads_than_cpus_are_refused(monkeypatch):
    """1000 threads on 2 CPUs ran 6x slower than 2: refused in one line naming the most that helps."""
    before = torch.get_num_threads()
    monkeypatch.setattr(hardware, "usable_cpus", lambda dirs=None: 2)
    with pytest.raises(PainterlyError, match=r"threads 3 is more than the 2 CPUs .* \(give at most 2\)"):
        hardware.set_threads(3)
    assert torch.get_num_threads() == before


def test_free_memory_honours_the_cgroup_limit(tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal: 100000000 kB\nMemAvailable:   50000000 kB\n")
    dirs = _cgroup(tmp_path, memory_max=str(3 * 2**30), memory_current=str(2**30))
    assert hardware.available_memory_bytes(meminfo, dirs) == 2 * 2**30
    unlimited = _cgroup(tmp_path, memory_max="max", memory_current=str(2**30))
    assert hardware.available_memory_bytes(meminfo, unlimited) == 50000000 * 1024


def test_a_run_that_does_not_fit_the_cgroup_is_tiled_not_refused(monkeypatch):
    limit = 1200 * 2**20
    monkeypatch.setattr(hardware, "cgroup_memory_left", lambda dirs=None: None)
    if hardware.available_memory_bytes() < 2 * limit:
        pytest.skip("too little free memory to tell the cgroup limit from the machine's")
    config = GatysConfig(size=1024, scales=1, precision="fp32", device="cpu")
    model = GATYS.memory(config, [], "fp32")
    assert model.scale_bytes((768, 1024), None, 200) > limit          # the whole image would not fit the cgroup
    assert make_plan(GATYS, config, (768, 1024), [(512, 512)], "cpu", "fp32")[-1].tiling is None
    monkeypatch.setattr(hardware, "cgroup_memory_left", lambda dirs=None: limit)
    scale = make_plan(GATYS, config, (768, 1024), [(512, 512)], "cpu", "fp32")[-1]
    assert scale.tiling is not None
    assert model.scale_bytes(scale.size, scale.tiling, 100) <= limit


def test_own_cgroup_dirs_walks_up_to_the_root(tmp_path):
    root = tmp_path / "fs"
    (root / "a" / "b").mkdir(parents=True)
    proc = tmp_path / "cgroup"
    proc.write_text("0::/a/b\n")
    assert hardware._own_cgroup_dirs(root, proc) == [root / "a" / "b", root / "a", root]


@pytest.mark.parametrize("native,speedup,chosen", [(True, 2.0, "bf16"), (True, 0.6, "fp32"), (True, 1.1, "fp32"),
                                                   (False, 2.0, "fp32")])
def test_precision_auto_takes_bf16_only_where_it_is_native_and_measured_faster(monkeypatch, capsys, native, speedup,
                                                                                 chosen):
    """A Xeon with avx512_bf16 but no AMX runs bf16 convolutions at about 0.6x fp32: the flag is not enough."""
    probes = []
    monkeypatch.setattr(hardware, "cpu_has_native_bf16", lambda: native)
    monkeypatch.setattr(hardware, "conv_bf16_speedup", lambda: probes.append(1) or speedup)
    monkeypatch.setattr(hardware, "_cpu_bf16_pays", None)
    assert hardware.resolve_precision("auto", "cpu") == chosen
    assert hardware.resolve_precision("auto", "cpu") == chosen
    assert len(probes) == (1 if native else 0)  # measured once per process, and only where bf16 is native
    assert capsys.readouterr().err == ""


def test_the_bf16_probe_leaves_the_callers_random_numbers_alone():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    speedup = hardware.conv_bf16_speedup()
    assert torch.equal(torch.rand(3), expected)
    assert 0.05 < speedup < 50  # a real timing of both precisions, whichever wins here


def test_bf16_without_native_support_warns_in_one_line_once(monkeypatch, capsys):
    monkeypatch.setattr(hardware, "cpu_has_native_bf16", lambda: False)
    monkeypatch.setattr(hardware, "_cpu_bf16_pays", None)  # an earlier test may have measured this CPU
    monkeypatch.setattr(hardware, "_warned_slow_bf16", False)
    assert hardware.resolve_precision("bf16", "cpu") == "bf16"
    assert hardware.resolve_precision("bf16", "cpu") == "bf16"
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("painterly: warning:") and "slow" in lines[0]
    monkeypatch.setattr(hardware, "cpu_has_native_bf16", lambda: True)
    monkeypatch.setattr(hardware, "conv_bf16_speedup", lambda: 2.0)
    monkeypatch.setattr(hardware, "_cpu_bf16_pays", None)
    monkeypatch.setattr(hardware, "_warned_slow_bf16", False)
    hardware.resolve_precision("bf16", "cpu")
    assert capsys.readouterr().err == ""
    # native, yet measured slower (a Xeon without AMX): asked for, it works, with the reason in one line
    monkeypatch.setattr(hardware, "conv_bf16_speedup", lambda: 0.6)
    monkeypatch.setattr(hardware, "_cpu_bf16_pays", None)
    assert hardware.resolve_precision("bf16", "cpu") == "bf16"
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "less than 1.3x as fast as fp32 (measured)" in lines[0]


def test_torch_is_asked_about_bf16_first(monkeypatch):
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False, raising=False)
    assert hardware.cpu_has_native_bf16() is False
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True, raising=False)
    assert hardware.cpu_has_native_bf16() is True


@pytest.mark.parametrize("device,fragment", [("meta", "not supported"), ("cuda:9", "not available"),
                                             ("nonsense", "unknown device")])
def test_bad_devices_are_refused_in_one_line(device, fragment):
    if torch.cuda.is_available() and device.startswith("cuda"):
        pytest.skip("a GPU is present")
    with pytest.raises(PainterlyError, match=fragment):
        hardware.resolve_device(device)


def test_match_color_builds_its_matrices_on_the_images_device(monkeypatch):
    """--preserve-color histogram failed on CUDA: its identity matrix was made on the CPU. Every
    tensor it makes must come from the input's device (checked here by spying on torch.eye; the GPU
    run below, where one is present, is the real thing)."""
    from painterly.image import match_color

    devices = []
    real_eye = torch.eye

    def eye(*args, **kwargs):
        devices.append(kwargs.get("device"))
        return real_eye(*args, **kwargs)

    monkeypatch.setattr(torch, "eye", eye)
    src, ref = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)
    match_color(src, ref)
    assert devices and all(d == src.device for d in devices)
    if torch.cuda.is_available():
        out = match_color(src.cuda(), ref.cuda())
        assert out.device.type == "cuda"


def test_the_speed_probes_time_one_thread_and_restore_the_count(monkeypatch):
    """A precision's gain is timed on one thread: two threads on a busy machine stall each other at the
    convolution's barrier and the ratio swings (1.1x-4.2x for bf16 on a loaded Zen 4)."""
    before = torch.get_num_threads()
    seen = []

    def probe():
        seen.append(torch.get_num_threads())
        return 2.0

    monkeypatch.setattr(hardware, "cpu_has_native_bf16", lambda: True)
    monkeypatch.setattr(hardware, "conv_bf16_speedup", probe)
    monkeypatch.setattr(hardware, "_cpu_bf16_pays", None)
    assert hardware.bf16_pays("cpu")
    monkeypatch.setattr(hardware, "cpu_has_vnni", lambda: True)
    monkeypatch.setattr(hardware, "supported", lambda: True)
    monkeypatch.setattr(hardware, "conv_int8_speedup", probe)
    monkeypatch.setattr(hardware, "_cpu_int8_pays", None)
    assert hardware.int8_pays("cpu")
    assert seen == [1, 1] and torch.get_num_threads() == before
