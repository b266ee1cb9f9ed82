"""Forward passes keep freed maps in glibc's heap, and only with memory to spare."""

import dataclasses
import subprocess
import sys

import pytest
import torch

import painterly.driver as driver
from painterly import heap
from painterly.api import get_method, make_config
from painterly.nets.io import save_model
from painterly.nets.transformer import Architecture, TransformerNet

needs_glibc = pytest.mark.skipif(heap._LIBC is None or not hasattr(heap._LIBC, "mallinfo2"), reason="glibc 2.33+")
BIG = 64 << 20  # over glibc's largest mmap threshold (32 MB)


ALLOCATIONS = """
import ctypes, sys
import torch
from painterly import heap

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

heap._LIBC.mallinfo2.restype = MallInfo2

def mapped_by(make):
    # bytes glibc maps on their own (outside its heap) for what make() allocates
    before = heap._LIBC.mallinfo2().hblkhd
    x = make()
    return heap._LIBC.mallinfo2().hblkhd - before

big = lambda: torch.empty(64 << 20, dtype=torch.uint8)  # over glibc's largest mmap threshold (32 MB)
outside = mapped_by(big)
with heap.heap_reuse():
    with heap.heap_reuse():  # nested blocks share the setting
        pass
    inside = mapped_by(big)
after = mapped_by(big)
print(outside, inside, after)
"""


@needs_glibc
def test_inside_heap_reuse_a_large_map_comes_from_the_heap_and_after_it_from_its_own_mapping():
    """In a fresh process (whose heap holds no large free block yet): glibc maps a 64 MB block on its own,
    inside heap_reuse it takes it from the heap, and after it the defaults are back."""
    out = subprocess.run([sys.executable, "-c", ALLOCATIONS], capture_output=True, text=True, check=True)
    outside, inside, after = map(int, out.stdout.split())
    assert outside >= BIG and inside < BIG and after >= BIG


def _network_config(tmp_path):
    path = save_model(tmp_path / "m.safetensors", TransformerNet(Architecture((4, 6, 8), 1, 1)), {"styles": ["a"]})
    return make_config("network", model=str(path), size=64, precision="fp32")


def test_a_forward_pass_reuses_the_heap_only_with_room_for_its_holes(tmp_path, monkeypatch):
    recipe, config = get_method("network"), _network_config(tmp_path)
    plan = driver.make_plan(recipe, config, (48, 64), [], "cpu", "fp32")
    assert driver.reuses_heap(recipe, config, plan, [], "cpu", "fp32")  # megabytes of a free machine
    peak = max(driver.scale_peak_bytes(s, recipe.memory(config, [], "fp32")) for s in plan)
    # a budget that holds the estimate but not twice it: maps go back to the kernel as usual
    monkeypatch.setattr(driver, "memory_budget", lambda config, device: int(peak * 1.9))
    assert not driver.reuses_heap(recipe, config, plan, [], "cpu", "fp32")
    monkeypatch.setattr(driver, "memory_budget", lambda config, device: int(peak * 2.1))
    assert driver.reuses_heap(recipe, config, plan, [], "cpu", "fp32")
    assert not driver.reuses_heap(recipe, config, plan, [], "cuda", "fp32")  # a GPU has its own cache


def test_an_optimisation_does_not_reuse_the_heap():
    recipe, config = get_method("gatys"), make_config("gatys", size=64, precision="fp32")
    plan = driver.make_plan(recipe, config, (48, 64), [(32, 32)], "cpu", "fp32")
    assert not driver.reuses_heap(recipe, config, plan, [(32, 32)], "cpu", "fp32")


def test_the_driver_runs_a_forward_pass_inside_heap_reuse(tmp_path, monkeypatch):
    from contextlib import contextmanager

    import painterly

    entered = []

    @contextmanager
    def recording():
        entered.append(True)
        yield

    monkeypatch.setattr(driver, "heap_reuse", recording)
    config = _network_config(tmp_path)
    painterly.stylize(torch.rand(1, 3, 24, 32), config=config)
    assert entered == [True]
    monkeypatch.setattr(driver, "reuses_heap", lambda *args: False)
    painterly.stylize(torch.rand(1, 3, 24, 32), config=config)
    assert entered == [True]


def test_a_tiled_plan_does_not_reuse_the_heap(tmp_path):
    """Tiles are chosen for want of memory, and a network's follow a whole-image statistics pass."""
    recipe, config = get_method("network"), _network_config(tmp_path)
    config = dataclasses.replace(config, tile_size=128, size=256)
    plan = driver.make_plan(recipe, config, (192, 256), [], "cpu", "fp32")
    assert plan[-1].tiling is not None
    assert not driver.reuses_heap(recipe, config, plan, [], "cpu", "fp32")


@pytest.mark.parametrize("name,value", [("MALLOC_ARENA_MAX_", "2"), ("GLIBC_TUNABLES", "glibc.malloc.mmap_max=0")])
def test_malloc_tuned_by_the_user_is_left_alone(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    assert heap._user_tuned()
