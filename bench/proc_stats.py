"""What Linux's /proc says: a process's CPU time, resident and peak memory; the machine's CPU."""

from __future__ import annotations

import os
from pathlib import Path


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds process ``pid`` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8").rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu_seconds() -> tuple[float, float]:
    """CPU seconds the machine's cores have been busy and have existed so far, all cores summed.

    Busy is user, nice, system, irq and softirq time (every process and the
    kernel's network work); the total adds idle and iowait. Time the
    hypervisor gave to other guests (steal) is in neither.
    """
    fields = Path("/proc/stat").read_text(encoding="utf-8").splitlines()[0].split()
    user, nice, system, idle, iowait, irq, softirq = (int(f) for f in fields[1:8])
    busy = user + nice + system + irq + softirq
    tick = os.sysconf("SC_CLK_TCK")
    return busy / tick, (busy + idle + iowait) / tick


def rss_bytes(pid: int) -> int:
    """Resident set size of process ``pid`` (VmRSS)."""
    return _status_kb(pid, "VmRSS:") * 1024


def peak_rss_mb(pid: int) -> float:
    """Peak resident set (VmHWM) of process ``pid`` in MB; 0.0 when /proc does not say."""
    try:
        return round(_status_kb(pid, "VmHWM:") / 1024, 1)
    except LookupError:
        return 0.0


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text(encoding="utf-8").splitlines():
        if line.startswith(field):
            return int(line.split()[1])
    raise LookupError(f"no {field} in /proc/{pid}/status")
