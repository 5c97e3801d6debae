"""The sandbox closes what it opens: no SQLite connection is left to the garbage collector (Python 3.13
prints a ResourceWarning for one)."""

from __future__ import annotations

import subprocess
import sys

from almatools.sandbox import start_sandbox
from almatools.sandbox.server import SandboxServer
from almatools.sandbox.store import Store


def test_a_started_sandbox_closes_its_store_when_stopped(tmp_path):
    server = start_sandbox(tmp_path / "sandbox", users=60, seed=1)
    assert server.running and server.owns_store and server.store.count() > 0
    server.stop()
    assert server.store._db is None  # closed, not left open
    server.stop()  # idempotent


def test_a_store_given_by_the_caller_stays_open(tmp_path):
    with Store(tmp_path / "s.sqlite") as store:
        with SandboxServer(store, api_key="k"):
            pass
        assert store.count() == 0  # still usable: the caller closes it


def test_no_resource_warning_at_exit(tmp_path):
    code = ("import gc, warnings; warnings.simplefilter('error', ResourceWarning);"
            "from almatools.sandbox import start_sandbox;"
            f"s = start_sandbox({str(tmp_path / 'sb')!r}, users=60, seed=1); s.stop(); del s; gc.collect();"
            "print('ok')")
    done = subprocess.run([sys.executable, "-X", "dev", "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
    assert "ResourceWarning" not in done.stderr, done.stderr
