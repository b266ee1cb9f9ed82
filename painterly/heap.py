"""Keeping freed feature maps in the process's heap while a network runs.

glibc gives every freed block over its mmap threshold (32 MB at most) straight back to the kernel, and
the next such allocation comes back as fresh zeroed pages, each faulted in on first touch. A network
pass at inference frees one map and makes the next at every layer, and in float32 most of them are
over that size (a 128-channel map at 256x256 is 32 MB, a 16-channel one at 1024x1024 64 MB): at 1024
px those page faults took a fifth of the style network's time. Inside `heap_reuse` glibc serves every
block from its heap, so a layer's map reuses the pages the layer before it freed; on leaving, the
heap's free pages go back to the kernel and glibc's steady-state settings return. Elsewhere (other C
libraries, other systems, or where the user tunes malloc by environment) it does nothing.

The setting is the process's: a job running beside a forward pass (a web server's other worker) gets
its blocks from the heap too while it lasts, and after it glibc's mmap threshold stays at its usual
steady value (32 MB) rather than adjusting from 128 KB again. In threads other than the main one glibc
still maps blocks of 64 MB and more on their own (its per-thread heaps are that size), so there the
largest maps still fault in afresh.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
import threading
from contextlib import contextmanager
from typing import Iterator, Optional

# mallopt parameters (malloc.h)
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_MMAP_MAX = -1, -3, -4
# glibc's own values once its dynamic threshold has met large blocks: mmap above 32 MB, trim the heap's
# top above twice that; and its default count of mmapped blocks.
STEADY_MMAP_THRESHOLD, STEADY_TRIM_THRESHOLD, DEFAULT_MMAP_MAX = 32 << 20, 64 << 20, 65536

_lock = threading.Lock()
_users = 0


def _glibc() -> Optional[ctypes.CDLL]:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def _user_tuned() -> bool:
    """Whether the user set glibc's malloc by environment (MALLOC_*_ or GLIBC_TUNABLES): left alone."""
    return any(name.startswith("MALLOC_") and name.endswith("_") for name in os.environ) or \
        "malloc" in os.environ.get("GLIBC_TUNABLES", "")


_LIBC = None if _user_tuned() else _glibc()


@contextmanager
def heap_reuse() -> Iterator[None]:
    """Within the block, freed blocks of any size stay in the heap for the next allocation (nested and
    concurrent blocks share one setting, undone when the last leaves)."""
    global _users
    if _LIBC is None:
        yield
        return
    entered = False  # a second Ctrl-C may land anywhere: undo only what was done
    try:
        with _lock:
            _users += 1
            entered = True
            if _users == 1:
                _LIBC.mallopt(M_MMAP_MAX, 0)
                _LIBC.mallopt(M_TRIM_THRESHOLD, 2**31 - 1)
        yield
    finally:
        with _lock:
            _users -= entered
            if entered and _users == 0:
                _LIBC.mallopt(M_MMAP_MAX, DEFAULT_MMAP_MAX)
                _LIBC.mallopt(M_MMAP_THRESHOLD, STEADY_MMAP_THRESHOLD)
                _LIBC.mallopt(M_TRIM_THRESHOLD, STEADY_TRIM_THRESHOLD)
                _LIBC.malloc_trim(0)
