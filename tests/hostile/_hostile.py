"""Helpers of the hostile-input suite: run a command under a memory cap and check the contract.

The contract for every command and every input: exit status 0, 1 or 3; never a traceback; when it
fails, one line on standard error that starts with ``almatools COMMAND:``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

MEMORY_CAP = 1536 << 20
"""1.5 GiB of data memory (heap and private anonymous mappings: ``RLIMIT_DATA``) for the command's process.
Not ``RLIMIT_AS``: DuckDB (the duplicate linkage) reserves over 2 GiB of address space it never touches,
so an address-space cap stops even a 20-user run; the data cap still stops any reader that holds a file."""
_PRELUDE = (
    "import atexit, os, resource, sys\n"
    f"resource.setrlimit(resource.RLIMIT_DATA, ({MEMORY_CAP}, {MEMORY_CAP}))\n"
    # The process's own peak (VmHWM of its memory since exec): wait4's ru_maxrss also counts the pages of the
    # test process it was started from, so a test run holding 800 MiB would make a 180 MiB command look large.
    "def _peak():\n"
    "    with open('/proc/self/status') as f, open(os.environ['_PEAK_FILE'], 'w') as out:\n"
    "        out.write(next(l.split()[1] for l in f if l.startswith('VmHWM:')))\n"
    "atexit.register(_peak)\n"
    "from almatools.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Outcome:
    """What one command did: exit status, its output, peak resident memory (MiB) and seconds."""

    code: int
    stdout: str
    stderr: str
    peak_mib: float
    seconds: float

    @property
    def message(self) -> str:
        lines = [line for line in self.stderr.splitlines() if line.startswith("almatools ")]
        return lines[-1] if lines else ""


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 300, env: dict[str, str] | None = None) -> Outcome:
    """Run ``almatools ARGS`` in a fresh interpreter whose data memory is capped at 1.5 GiB; the peak
    resident memory is the process's own (its ``VmHWM`` at exit; ``wait4``'s when it was killed)."""
    started = time.monotonic()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, tempfile.TemporaryDirectory() as tmp:
        peak_file = Path(tmp) / "peak"
        proc = subprocess.Popen([sys.executable, "-c", _PRELUDE, *map(str, args)], cwd=cwd or ROOT, stdout=out,
                                stderr=err, env={**os.environ, **(env or {}), "_PEAK_FILE": str(peak_file)})
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() - started > timeout:
                proc.kill()
                os.wait4(proc.pid, 0)
                raise TimeoutError(f"almatools {' '.join(map(str, args))} ran over {timeout} s")
            time.sleep(0.05)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        peak_kib = int(peak_file.read_text()) if peak_file.is_file() and peak_file.read_text().strip() else usage.ru_maxrss
        return Outcome(proc.returncode, out.read().decode("utf-8", "replace"), err.read().decode("utf-8", "replace"),
                       peak_kib / 1024, time.monotonic() - started)


def check_contract(outcome: Outcome, command: str) -> None:
    """The command answered cleanly: 0, 1 or 3, no traceback, one ``almatools COMMAND:`` line when it failed."""
    assert outcome.code in (0, 1, 3), (outcome.code, outcome.stderr[-2000:])
    assert "Traceback" not in outcome.stderr, outcome.stderr[-3000:]
    assert "Traceback" not in outcome.stdout, outcome.stdout[-3000:]
    if outcome.code == 1:  # the last line says why, on its own (lines before it report skipped records)
        lines = [line for line in outcome.stderr.splitlines() if line.strip()]
        assert lines and lines[-1].startswith(f"almatools {command}:"), outcome.stderr[-2000:]
        assert len(lines[-1]) < 2200
