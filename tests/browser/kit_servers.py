"""Start ``./kit lab`` and ``./kit app`` as a librarian would (the current user: root in CI and containers),
each with a small sandbox of its own, on free loopback ports, with Jupyter's per-user folders in a
temporary directory so that nothing from this machine's own Jupyter settings hides a problem.
(Imported by name: only the browser tests use it.)"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KIT = ROOT / "kit"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
USERS = 1000  # a small institution: every notebook runs in seconds, and 02 has more than a page of findings
NOTEBOOKS = sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class KitServer:
    """A running ``./kit lab`` or ``./kit app``."""

    mode: str
    process: subprocess.Popen
    port: int
    token: str
    api_key: str
    workspace: Path
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def sandbox_url(self) -> str:
        for line in self.output().splitlines():
            if line.startswith("The Alma sandbox is running at "):
                return line.split(" at ", 1)[1].split(" ", 1)[0]
        raise AssertionError("the kit did not say where the sandbox runs:\n" + self.output()[-2000:])

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)  # Ctrl-C, as a person stops it
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=15)


def start_kit(mode: str, home: Path, *, extra: tuple[str, ...] = ()) -> KitServer:
    """``./kit lab|app`` with no root flag, waiting until its page answers."""
    home.mkdir(parents=True, exist_ok=True)
    port, token, key = free_port(), secrets.token_hex(16), secrets.token_hex(12)
    jupyter = home / "jupyter"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALMA_", "ALMATOOLS_", "JUPYTER"))}
    env.update(JUPYTER_CONFIG_DIR=str(jupyter / "config"), JUPYTER_DATA_DIR=str(jupyter / "data"),
               JUPYTER_RUNTIME_DIR=str(jupyter / "runtime"), JUPYTERLAB_SETTINGS_DIR=str(jupyter / "settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(jupyter / "workspaces"))
    workspace = home / "work"
    notebooks = home / "notebooks"  # a copy: nothing a test does can touch the checkout's notebooks
    shutil.copytree(ROOT / "notebooks", notebooks, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    command = [str(KIT), mode, "--no-browser", f"--port={port}", f"--sandbox-port={free_port()}",
               "--workspace", str(workspace), "--notebooks", str(notebooks),
               "--data", str(home / "data" / "sandbox"), "--users", str(USERS), "--api-key", key,
               *extra]
    if mode == "lab":
        # expose_app_in_browser: the test runs Lab's own commands (window.jupyterapp), as a menu click would
        command += ["--", f"--IdentityProvider.token={token}", "--ServerApp.port_retries=0",
                    "--LabApp.expose_app_in_browser=True"]
    log = home / f"{mode}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True, cwd=home)
    server = KitServer(mode, process, port, token, key, workspace, log)
    probe = f"{server.url}/api/status?token={token}" if mode == "lab" else f"{server.url}/"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            with urllib.request.urlopen(probe, timeout=3) as reply:
                if reply.status == 200:
                    return server
        except OSError:
            time.sleep(0.5)
    server.stop()
    raise AssertionError(f"./kit {mode} did not come up (exit {process.poll()}):\n" + server.output()[-4000:])
