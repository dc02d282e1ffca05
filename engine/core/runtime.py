"""Process-wide CPU speed settings, applied once by the entry points (CLI, app, benchmarks), never on import.

- glibc's allocator returns every large freed block to the OS and takes it back on the next pass: a
  DenseNet121 forward at 224 then costs 100-190k page faults, about 1.5x the time (measured on 2-core VMs,
  ``python -m bench.inference``). Raising the mmap and trim thresholds keeps those blocks in the process.
  ``GLIBC_TUNABLES`` does the same from the environment; ``mallopt`` does it from inside the process, for the
  allocations that follow.

Torch-free: the precision choice that needs torch is ``engine.models.device.autocast_dtype``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys

log = logging.getLogger(__name__)

MMAP_THRESHOLD = 32 * 1024 * 1024  # blocks below 32 MiB come from the heap, which is kept
TRIM_THRESHOLD = 1 << 30  # give memory back to the OS only when 1 GiB at the top of the heap is free
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # from glibc's malloc.h
PRECISIONS = ("auto", "fp32", "bf16")
_malloc_tuned: bool | None = None


def tune_malloc() -> bool:
    """Raise glibc's mmap/trim thresholds once per process; True when they are in effect.

    Off with ``HISTOGUARD_MALLOC_TUNING=0``; a no-op (False) on other C libraries and systems, and when
    ``GLIBC_TUNABLES`` already sets the thresholds (the user's choice wins).
    """
    global _malloc_tuned
    if _malloc_tuned is not None:
        return _malloc_tuned
    _malloc_tuned = False
    if os.environ.get("HISTOGUARD_MALLOC_TUNING", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    if "malloc.mmap_threshold" in os.environ.get("GLIBC_TUNABLES", ""):
        _malloc_tuned = True
        return True
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = (
            libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
            and libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
        )
    except (OSError, AttributeError):  # musl and others have no mallopt
        ok = False
    _malloc_tuned = ok
    log.debug("malloc thresholds %s", "raised" if ok else "left at their defaults")
    return ok


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def malloc_tuned() -> bool:
    """Whether ``tune_malloc`` raised the thresholds in this process."""
    return bool(_malloc_tuned)
