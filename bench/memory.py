"""Peak memory of this process alone.

`getrusage().ru_maxrss` survives exec on Linux: a child forked from a big parent reports the
parent's peak. The kernel's VmHWM belongs to the process's own address space, so it starts
fresh at exec.
"""

from __future__ import annotations

from pathlib import Path


def peak_rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")
