"""Start the sandbox as its own process (as `almatools sandbox` does) for a benchmark; not a test."""

from __future__ import annotations

import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def sandbox_process(data: Path, *flags: str):
    """Run ``almatools sandbox --port 0 --data DATA FLAGS…``; yield (base_url, api_key)."""
    cmd = [sys.executable, "-m", "almatools", "sandbox", "--port", "0", "--data", str(data), *flags]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        found: dict[str, str] = {}
        for line in proc.stdout:
            name, _, value = line.strip().partition("=")
            if name in ("ALMA_BASE_URL", "ALMA_API_KEY"):
                found[name] = value
            if len(found) == 2:
                break
        if len(found) != 2:
            raise RuntimeError(f"the sandbox did not start (exit {proc.wait()})")
        yield found["ALMA_BASE_URL"], found["ALMA_API_KEY"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
