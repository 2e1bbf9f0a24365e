"""What every benchmark reports about the machine it ran on (imported by the scripts here)."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (or platform's guess elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def busy_cpu_seconds() -> float | None:
    """CPU seconds spent busy by the whole machine since boot (Linux), or None."""
    try:
        fields = Path("/proc/stat").read_text(encoding="utf-8").split("\n", 1)[0].split()[1:]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def other_cpu_seconds(busy_start: float | None, own_cpu: float) -> float | None:
    """CPU seconds other processes spent since ``busy_start`` (``busy_cpu_seconds()`` then),
    given this run's own CPU seconds in that time; None where the machine's count is unknown."""
    busy_end = busy_cpu_seconds()
    if busy_start is None or busy_end is None:
        return None
    return max(0.0, busy_end - busy_start - own_cpu)
