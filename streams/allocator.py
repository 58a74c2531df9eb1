"""Keep freed memory in the process for reuse, instead of handing it back to the kernel (glibc malloc).

Why: the window engine's per-batch temporaries are hundreds of KB to a few MB each. With glibc's
defaults, blocks that large are mmap'ed and unmapped again on free (or trimmed off the heap top),
so every batch faults fresh, zero-filled pages back in. On the VMs measured here that first touch
costs more than the arithmetic done in the pages: the window kernel ran ~20% faster with the
memory kept (same process, alternating the two settings). Keeping it costs nothing that a worker
does not hold anyway: RSS stays at the peak working set instead of dipping between batches.

The worker applies it at start-up (`streams.app.make_app`, `IOC_KEEP_FREED_MEMORY=0` turns it
off) and the kernel benchmark applies it as the worker does.
"""

from __future__ import annotations

import ctypes
import ctypes.util

_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3  # glibc's mallopt parameters
_MMAP_THRESHOLD_MAX = 32 << 20  # glibc's ceiling on 64-bit: larger blocks are always mmap'ed
_TRIM_THRESHOLD = 1 << 30  # free heap top kept before trimming
_TOP_PAD = 64 << 20  # heap grown in steps this large: fewer brk calls, pages reused


def keep_freed_memory() -> bool:
    """Tune malloc for this process; False, and nothing changed, where the C library is not glibc."""
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):  # no libc by that name, or no mallopt (macOS)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return all(mallopt(param, value) == 1 for param, value in (
        (_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX), (_M_TRIM_THRESHOLD, _TRIM_THRESHOLD), (_M_TOP_PAD, _TOP_PAD)))
