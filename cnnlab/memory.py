"""The peak resident memory of this process (a notebook's kernel, or a worker training its runs)."""

from __future__ import annotations

import resource
import sys
from pathlib import Path


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB: Linux's high-water mark of its own memory (VmHWM;
    `getrusage` would also count the parent's pages a forked kernel shared before its exec), else
    `getrusage`'s maximum (kilobytes on Linux, bytes on macOS)."""
    try:
        status = Path("/proc/self/status").read_text()
        return round(int(status.split("VmHWM:")[1].split()[0]) / 1024, 1)
    except (OSError, IndexError, ValueError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return round(peak / (2**20 if sys.platform == "darwin" else 2**10), 1)
