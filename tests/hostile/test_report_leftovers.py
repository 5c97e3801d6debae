"""A report run leaves no temporary folder behind: SIGTERM cleans up like Ctrl-C, and after kill -9 the next
run sweeps the dead run's folder (with the unmasked data it held) but never a live run's."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from _files import placeholder_users

from almatools import reports


def start_report(root: Path, users: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "almatools", "report", "--out", str(root), "--users", str(users),
                             "--quiet", "--no-duplicates"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)


def wait_for_temporary(root: Path, proc: subprocess.Popen, timeout: float = 60) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [p for p in root.glob(".tmp-*") if (p / ".owner.lock").exists()] if root.exists() else []
        if found:
            return found[0]
        assert proc.poll() is None, proc.stderr.read().decode()
        time.sleep(0.05)
    raise AssertionError("the run made no temporary folder")


def stop_group(proc: subprocess.Popen) -> None:
    """End what this test started: the report and its notebook kernel (its own process group)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)
    proc.stderr.close()


def test_after_kill_9_the_next_run_sweeps_the_dead_runs_folder(tmp_path):
    users = placeholder_users(tmp_path / "users.xml", 20)
    root = tmp_path / "reports"
    proc = start_report(root, users)
    try:
        left = wait_for_temporary(root, proc)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        stop_group(proc)
    assert left.exists()  # kill -9 leaves it: nothing in the process can run
    run = reports.start_run(root)
    try:
        assert not left.exists()
        assert [p.name for p in root.glob(".tmp-*")] == [run.folder.name]
    finally:
        reports.abandon_run(run)
    assert list(root.glob(".tmp-*")) == []


def test_a_live_runs_temporary_folder_is_never_swept(tmp_path):
    first = reports.start_run(tmp_path / "reports")
    second = reports.start_run(tmp_path / "reports")
    try:
        assert first.folder.exists() and second.folder.exists()
    finally:
        reports.abandon_run(first)
        reports.abandon_run(second)
    assert list((tmp_path / "reports").glob(".tmp-*")) == []


def test_sigterm_removes_the_runs_temporary_folder(tmp_path):
    users = placeholder_users(tmp_path / "users.xml", 20)
    root = tmp_path / "reports"
    proc = start_report(root, users)
    try:
        left = wait_for_temporary(root, proc)
        os.kill(proc.pid, signal.SIGTERM)
        code = proc.wait(timeout=60)
        err = proc.stderr.read().decode()
        assert "Traceback" not in err.split("[IPKernelApp]")[0], err  # the command's own output
    finally:
        stop_group(proc)
    # 130 from the console script; `python -m almatools` (this test) at times ends by SIGINT instead (-2):
    # either way the run stopped on its signal, said so, and left nothing behind.
    assert code in (130, -signal.SIGINT), err
    assert "stopped; nothing was written" in err
    assert not left.exists() and list(root.glob(".tmp-*")) == []
