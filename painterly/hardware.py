"""What this process may use: device, CPUs (affinity and cgroup quota), memory (cgroup limit), and
whether bf16 or int8 pays.

In a container `os.cpu_count()` and /proc/meminfo describe the host, not the container: a run sized
by them over-subscribes the CPUs or is OOM-killed instead of tiled. Everything here reads the limits
that apply to this process.
"""

from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path
from typing import Callable, Optional, Union

import torch

from .errors import PainterlyError
from .quantized import conv_int8_speedup, cpu_has_vnni, supported

CGROUP_ROOT = Path("/sys/fs/cgroup")


def _own_cgroup_dirs(root: Path = CGROUP_ROOT, proc_cgroup: Path = Path("/proc/self/cgroup")) -> list[Path]:
    """This process's cgroup v2 folder and its ancestors up to `root` (innermost first)."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return []
    path = next((line.split(":", 2)[2] for line in lines if line.startswith("0::")), None)
    if path is None:
        return []
    here = root / path.lstrip("/")
    dirs = [here, *here.parents]
    return [d for d in dirs if d == root or root in d.parents]


def _read(path: Path) -> Optional[str]:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def cgroup_cpu_limit(dirs: Optional[list[Path]] = None) -> Optional[float]:
    """The tightest cgroup CPU quota (cpu.max 'quota period') on this process's path, in CPUs."""
    limit = None
    for d in _own_cgroup_dirs() if dirs is None else dirs:
        text = _read(d / "cpu.max")
        if not text:
            continue
        quota, _, period = text.partition(" ")
        if quota != "max" and period:
            cpus = int(quota) / int(period)
            limit = cpus if limit is None else min(limit, cpus)
    return limit


def usable_cpus(dirs: Optional[list[Path]] = None) -> int:
    """CPUs this process may run on: its affinity mask, capped by a cgroup quota (rounded up)."""
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        count = os.cpu_count() or 1
    quota = cgroup_cpu_limit(dirs)
    if quota is not None:
        count = min(count, max(1, math.ceil(quota)))
    return max(1, count)


def check_threads(threads: Optional[int]) -> int:
    """The threads a run asking for `threads` uses (None: usable_cpus()); more than the CPUs are refused."""
    cpus = usable_cpus()
    if threads is not None and threads > cpus:
        raise PainterlyError(f"threads {threads} is more than the {cpus} CPU{'s' if cpus > 1 else ''} this process "
                             f"may use; more threads than CPUs only slow the run (give at most {cpus})")
    return cpus if threads is None else threads


def set_threads(threads: Optional[int]) -> int:
    """Set torch's intra-op threads once (None: usable_cpus()); returns the count in force. More threads
    than the process may use are refused: they only preempt one another (1000 ran 6x slower than 2)."""
    wanted = check_threads(threads)
    if torch.get_num_threads() != wanted:
        torch.set_num_threads(wanted)
    return wanted


def resumed_threads(recorded: object, requested: Optional[int], where: str,
                    default: Optional[int] = None) -> Optional[int]:
    """The CPU threads a resumed run uses, given those its first process `recorded` (where: the file or
    folder that recorded them): by default the same, since another count sums each convolution in another
    order and the continuation drifts from the uninterrupted run (Gatys by up to 37 levels of 255). Another
    count, asked for or forced by fewer CPUs (`default`: what this process would use; a torchrun rank's
    share), goes on with a note."""
    if not isinstance(recorded, int) or recorded == requested:
        return requested
    default = default or usable_cpus()
    if requested is None and recorded <= default:
        return recorded
    now = requested or default
    if now != recorded:
        print(f"painterly: note: {where} was computed on {recorded} threads; on {now} the run goes on close to, "
              "not exactly as, it would have", file=sys.stderr)
    return requested


def cgroup_memory_left(dirs: Optional[list[Path]] = None) -> Optional[int]:
    """Bytes left under the tightest cgroup memory limit (memory.max - memory.current) on this
    process's path; None where no limit is set."""
    left = None
    for d in _own_cgroup_dirs() if dirs is None else dirs:
        limit, used = _read(d / "memory.max"), _read(d / "memory.current")
        if not limit or limit == "max" or used is None:
            continue
        room = max(0, int(limit) - int(used))
        left = room if left is None else min(left, room)
    return left


def available_memory_bytes(meminfo: Path = Path("/proc/meminfo"), dirs: Optional[list[Path]] = None) -> int:
    """Memory this process can still use: MemAvailable (Linux) or physical memory, capped by what its
    cgroup limit leaves."""
    free = None
    try:
        with open(meminfo) as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    free = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    if free is None:
        try:
            free = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):
            free = 8 * 2**30
    capped = cgroup_memory_left(dirs)
    return free if capped is None else min(free, capped)


def free_memory_bytes(device: Union[str, torch.device] = "cpu") -> int:
    """Free memory of a GPU ('cuda' the current one, 'cuda:1' that one), else the RAM this process can still
    use."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    return available_memory_bytes()


def resolve_device(device: str) -> torch.device:
    """'auto' -> cuda where a GPU is present, else cpu; a bad or absent device is a PainterlyError."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise PainterlyError(f"unknown device '{device}'; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise PainterlyError(f"device '{device}' is not available (no CUDA GPU found)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise PainterlyError(f"device '{device}' does not exist ({torch.cuda.device_count()} CUDA GPU(s) found)")
    elif dev.type != "cpu":
        raise PainterlyError(f"device '{device}' is not supported; use auto, cpu, cuda or cuda:N")
    return dev


def cpu_has_native_bf16() -> Optional[bool]:
    """Whether this CPU runs bf16 matrix maths in hardware (avx512_bf16 or AMX), as torch's oneDNN
    reports it; None where torch cannot tell."""
    mkldnn = getattr(torch.backends, "mkldnn", None)
    probe = getattr(getattr(torch.ops, "mkldnn", None), "_is_mkldnn_bf16_supported", None)
    if mkldnn is not None and mkldnn.is_available() and probe is not None:
        try:
            return bool(probe())
        except RuntimeError:
            pass
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    return "avx512_bf16" in flags or "amx_bf16" in flags


def bf16_is_native(device: torch.device | str = "cpu") -> bool:
    """True where bf16 matrix maths runs in hardware (CPU avx512_bf16/AMX, or a CUDA GPU that has it)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return bool(cpu_has_native_bf16())


_warned_slow_bf16 = False


# 'auto' takes bf16 on a CPU only where it ran the probe convolution at least this much faster than fp32.
# Where bf16 pays (AMX Xeons, Zen 4/5 EPYCs) it is about 2x; a Xeon with avx512_bf16 but no AMX ran it
# at 0.52-0.59x (and Gatys 1.8x, AdaIN 1.5x slower end to end), so the flag alone is not enough. The
# margin keeps a busy machine's noisy timings from flipping the choice.
BF16_MIN_SPEEDUP = 1.3
PROBE_RUNS = 10
_cpu_bf16_pays: Optional[bool] = None  # bf16_pays's answer for the CPU, measured once per process


def conv_bf16_speedup() -> float:
    """fp32 time over bf16 time of one VGG-sized 3x3 convolution (64 channels, 96x96, channels-last):
    the two precisions alternate, PROBE_RUNS timed runs each after a warm-up, and the fastest of each
    counts, so load from other processes weighs on both alike. About 0.06 s; draws from its own
    generator (the caller's random numbers stay as they were)."""
    import torch.nn.functional as F

    generator = torch.Generator().manual_seed(0)
    x = torch.randn(1, 64, 96, 96, generator=generator).contiguous(memory_format=torch.channels_last)
    w = torch.randn(64, 64, 3, 3, generator=generator).contiguous(memory_format=torch.channels_last)
    inputs = {dtype: (x.to(dtype), w.to(dtype)) for dtype in (torch.float32, torch.bfloat16)}
    best = {dtype: math.inf for dtype in inputs}
    with torch.no_grad():
        for run in range(PROBE_RUNS + 2):
            for dtype, (xs, ws) in inputs.items():
                start = time.perf_counter()
                F.conv2d(xs, ws, padding=1)
                if run >= 2:  # the first two warm up oneDNN's kernels
                    best[dtype] = min(best[dtype], time.perf_counter() - start)
    return best[torch.float32] / best[torch.bfloat16]


def on_one_thread(probe: Callable[[], float]) -> float:
    """A speed probe's ratio timed on one thread: what a precision gains is a property of the core, and
    with two threads, on a busy machine, one preempted thread stalls the other at the convolution's
    barrier (a Zen 4 with a training beside it gave bf16 1.1x to 4.2x; on one thread, 1.97x each time)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return probe()
    finally:
        torch.set_num_threads(threads)


def bf16_pays(device: torch.device | str = "cpu") -> bool:
    """Whether bf16 makes this device faster: a CUDA GPU that has it, or a CPU with native bf16 whose
    convolutions the probe measured at least BF16_MIN_SPEEDUP x faster (once per process, at the
    threads set then: set them first)."""
    global _cpu_bf16_pays
    device = torch.device(device)
    if device.type != "cpu":
        return bf16_is_native(device)
    if _cpu_bf16_pays is None:
        _cpu_bf16_pays = bf16_is_native(device) and on_one_thread(conv_bf16_speedup) >= BF16_MIN_SPEEDUP
    return _cpu_bf16_pays


INT8_ONE_PASS_ONLY = ("precision int8 is for methods of one forward pass, which need no gradient; this run "
                      "optimises or trains: use auto, fp32 or bf16")

# 'auto' takes int8 for a one-pass method only where the probe convolution, with its range probes, ran at
# least this much faster than fp32 (2.4x on a VNNI Xeon; docs/benchmarks.md, session 18).
INT8_MIN_SPEEDUP = 1.5
_cpu_int8_pays: Optional[bool] = None  # int8_pays's answer, measured once per process


def int8_pays(device: torch.device | str = "cpu") -> bool:
    """Whether int8 makes one-pass methods faster here: a CPU with VNNI whose int8 convolutions the probe
    measured at least INT8_MIN_SPEEDUP x faster than fp32 (once per process, at the threads set then)."""
    global _cpu_int8_pays
    if torch.device(device).type != "cpu":
        return False
    if _cpu_int8_pays is None:
        _cpu_int8_pays = bool(cpu_has_vnni()) and supported() and on_one_thread(conv_int8_speedup) >= INT8_MIN_SPEEDUP
    return _cpu_int8_pays


def resolve_precision(precision: str, device: torch.device | str = "cpu", int8_ok: bool = False) -> str:
    """'auto' -> 'int8' for a forward pass that needs no gradient (`int8_ok`) where int8 makes this CPU
    faster (int8_pays), else 'bf16' where that makes this hardware faster (bf16_pays), else 'fp32'.
    Asking for bf16 where it is slower (emulated, or native but measured slower) prints a one-line
    warning (once); asking for int8 where it cannot run is an error."""
    global _warned_slow_bf16
    if precision == "auto":
        if int8_ok and int8_pays(device):
            return "int8"
        return "bf16" if bf16_pays(device) else "fp32"
    if precision == "int8":
        if not int8_ok:
            raise PainterlyError(INT8_ONE_PASS_ONLY)
        if torch.device(device).type != "cpu":
            raise PainterlyError("precision int8 runs on the CPU only; use auto, fp32 or bf16 on a GPU")
        return precision
    if precision not in ("fp32", "bf16"):
        raise PainterlyError(f"precision must be auto, fp32, bf16 or int8, got '{precision}'")
    if precision == "bf16" and not _warned_slow_bf16 and not bf16_pays(device):
        _warned_slow_bf16 = True
        why = ("has no native bf16 (avx512_bf16/AMX)" if not bf16_is_native(device)
               else f"ran a bf16 convolution less than {BF16_MIN_SPEEDUP}x as fast as fp32 (measured)")
        print(f"painterly: warning: this CPU {why}; --precision bf16 may be slower than fp32", file=sys.stderr)
    return precision
