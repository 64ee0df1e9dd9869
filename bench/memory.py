"""Peak memory of a process alone.

`getrusage().ru_maxrss` survives exec on Linux: a child forked from a big parent reports the
parent's peak. The kernel's VmHWM belongs to the process's own address space, so it starts
fresh at exec. Run as a script, this runs a console command (such as `flights ingest ...`)
in its own process and writes that process's peak to a file when it exits:

    python bench/memory.py PEAK_FILE flights ingest --from 2024-03-01
"""

from __future__ import annotations

import atexit
import os
import runpy
import shutil
import sys
from pathlib import Path
from typing import NoReturn


def peak_rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def _run_console_command() -> None:
    peak_file, command, *arguments = sys.argv[1:]
    script = shutil.which(command, path=str(Path(sys.executable).parent)) or shutil.which(command)
    if script is None:
        raise SystemExit(f"{command}: not found beside {sys.executable} nor on PATH")

    def write_peak() -> None:
        Path(peak_file).write_text(str(peak_rss_kib()))

    atexit.register(write_peak)
    # `flights` ends with os._exit (no interpreter teardown), which skips atexit handlers.
    leave = os._exit

    def exit_with_peak(status: int) -> NoReturn:
        write_peak()
        leave(status)

    os._exit = exit_with_peak
    sys.argv = [script, *arguments]
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    _run_console_command()
