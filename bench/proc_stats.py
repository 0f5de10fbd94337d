"""What Linux's /proc says of a process: its CPU time so far, its resident and peak memory."""

from __future__ import annotations

import os
from pathlib import Path


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds process ``pid`` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8").rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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
