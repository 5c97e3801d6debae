"""``almatools sandbox``, ``almatools lab`` and ``almatools app``: the sandbox, and the notebooks in JupyterLab or Voila."""

from __future__ import annotations

import argparse
import logging
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any

from almatools.cli.common import _at_least_zero, _port, _say
from almatools.errors import AlmaToolsError

__all__ = ["add_serve_commands", "cmd_app", "cmd_lab", "cmd_sandbox"]

log = logging.getLogger("almatools")


def _wait_for_stop() -> None:
    """Block until Ctrl-C or SIGTERM."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(1.0):
        pass


def _sandbox_args(parser: argparse.ArgumentParser) -> None:
    from almatools.sandbox import DEFAULT_USERS

    group = parser.add_argument_group("sandbox")
    group.add_argument("--data", type=Path, help="data folder (default: $ALMATOOLS_DATA/sandbox, "
                       "else ~/.local/share/almatools/sandbox)")
    group.add_argument("--users", type=_at_least_zero, default=DEFAULT_USERS,
                       help="users to generate on first use (default %(default)s)")
    group.add_argument("--seed", type=int, default=0, help="seed of the synthetic institution (default %(default)s)")
    group.add_argument("--reset", action="store_true", help="throw the data away and generate it anew")
    group.add_argument("--latency-ms", type=_at_least_zero, default=0, help="added latency per call, in ms")
    group.add_argument("--fault-rate", type=float, default=0.0, help="share of calls that fail with 5xx or a dropped connection")
    group.add_argument("--per-second", type=_at_least_zero, default=25, help="calls per second before 429 PER_SECOND_THRESHOLD "
                       "(default %(default)s, as Alma; 0 = no limit)")
    group.add_argument("--daily-limit", type=_at_least_zero, default=200_000, help="calls per day before 429 DAILY_THRESHOLD "
                       "(default %(default)s; 0 = no limit)")
    group.add_argument("--api-key", help="the key the sandbox accepts (default: one made on first use and kept)")


def _start_sandbox(args: argparse.Namespace, *, host: str, port: int):
    from almatools.sandbox import start_sandbox

    if args.users < 1 or args.users > 1_000_000:
        raise AlmaToolsError(f"--users must be between 1 and 1,000,000, not {args.users}.")
    if not 0 <= args.fault_rate < 1:
        raise AlmaToolsError(f"--fault-rate must be at least 0 and below 1, not {args.fault_rate}.")
    return start_sandbox(args.data, users=args.users, seed=args.seed, reset=args.reset, api_key=args.api_key,
                         host=host, port=port, progress=True, latency_ms=args.latency_ms,
                         fault_rate=args.fault_rate, per_second=args.per_second, daily_limit=args.daily_limit)


def cmd_sandbox(args: argparse.Namespace) -> int:
    """Serve the sandbox until interrupted."""
    server = _start_sandbox(args, host=args.host, port=args.port)
    try:
        _say(f"ALMA_BASE_URL={server.base_url}")
        _say(f"ALMA_API_KEY={server.api_key}")
        _say(f"The Alma sandbox is serving {server.data_dir} at {server.base_url} (Ctrl-C stops it).")
        _wait_for_stop()
    finally:
        server.stop()
    return 0


def _notebook_dir(explicit: Path | None) -> Path:
    from almatools.config import CHECKOUT

    if explicit is not None:
        return explicit
    for candidate in (Path.cwd() / "notebooks", CHECKOUT / "notebooks" if CHECKOUT else None):
        if candidate is not None and candidate.is_dir():
            return candidate
    raise AlmaToolsError("No notebooks folder here: run from the kit's checkout, or give --notebooks DIR.")


def _free(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _serve(args: argparse.Namespace, mode: str) -> int:
    """Start the sandbox (unless ALMA_API_KEY is set), prepare the workspace, run Lab or Voila until stopped."""
    from almatools import app
    from almatools.config import Settings, child_environment, workspace

    settings = Settings.from_env()
    folder = (args.workspace or workspace()).expanduser().absolute()
    prepared = app.prepare_workspace(folder, _notebook_dir(args.notebooks).absolute())
    updates = {"ALMATOOLS_WORKSPACE": str(folder), "ALMATOOLS_UI": mode, "ALMATOOLS_SERVER_ROOT": str(folder)}
    server = None
    if settings.api_key:
        _say(f"Working against Alma at {settings.base_url} (ALMA_API_KEY is set): PRODUCTION data.")
    else:
        port = args.sandbox_port
        if port and not _free(port):
            _say(f"Port {port} is taken: the sandbox takes a free one instead.")
            port = 0
        server = _start_sandbox(args, host="127.0.0.1", port=port)
        updates.update(ALMA_BASE_URL=server.base_url, ALMA_API_KEY=server.api_key)
        data_dir = Path(server.data_dir)
        if data_dir.name == "sandbox":  # the kernels find its SIS extract where they look: $ALMATOOLS_DATA/sandbox
            updates["ALMATOOLS_DATA"] = str(data_dir.parent)
        else:
            _say(f"Note: the notebooks look for the sandbox's SIS extract in a folder named sandbox; {data_dir} is "
                 "not one, so they will read the users through the API and have no SIS extract.")
        _say(f"The Alma sandbox is running at {server.base_url} (data in {server.data_dir}).")
    _say(f"Workspace: {folder} ({len(prepared.notebooks)} notebooks; every output lands here by default).")
    if prepared.copied:
        _say(f"Notebooks copied into the workspace from the kit: {', '.join(prepared.copied)}.")
    for name in prepared.kept:
        _say(f"Kept your changed copy of {name}; the kit's newer version is {_notebook_dir(args.notebooks) / name} "
             "(delete the workspace copy to get it).")
    extra = list(args.jupyter_args)
    if mode == "lab":
        root = app.running_as_root() or args.allow_root
        if app.running_as_root():
            _say("Running as root: JupyterLab is started with --allow-root.")
        command = app.lab_command(folder, port=args.port, allow_root=root, open_browser=not args.no_browser,
                                  extra=extra)
        _say(f"Starting JupyterLab on port {args.port}; open the http://127.0.0.1 URL it prints below "
             "(with its token). Ctrl-C stops it and the sandbox.")
    else:
        command = app.app_command(folder, port=args.port, open_browser=not args.no_browser, extra=extra)
        _say(f"Starting the app (Voila) at http://127.0.0.1:{args.port}/ : one page per task, no code. "
             "Ctrl-C stops it and the sandbox.")
    try:
        prepend = {"JUPYTER_PATH": str(app.APP_JUPYTER_PATH)} if mode == "app" else None
        child = subprocess.Popen(command, env=child_environment(updates, prepend=prepend))
        try:
            return child.wait()
        except KeyboardInterrupt:
            child.send_signal(signal.SIGINT)
            try:
                return child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()
                return child.wait()
    finally:
        if server is not None:
            server.stop()


def cmd_lab(args: argparse.Namespace) -> int:
    """JupyterLab on the workspace, with the sandbox running unless ALMA_API_KEY is set."""
    return _serve(args, "lab")


def cmd_app(args: argparse.Namespace) -> int:
    """The notebooks as Voila apps (no code), with the sandbox running unless ALMA_API_KEY is set."""
    return _serve(args, "app")


def add_serve_commands(commands: Any) -> None:
    """Register ``sandbox``, ``lab`` and ``app`` on the CLI's subparsers."""
    sandbox = commands.add_parser("sandbox", help="serve the local Alma sandbox",
                                  description="Serve a local server that answers like Alma's Users API, "
                                  "seeded with a synthetic institution. Prints ALMA_BASE_URL= and ALMA_API_KEY= lines.")
    sandbox.add_argument("--host", default="127.0.0.1", help="address to listen on (default %(default)s)")
    sandbox.add_argument("--port", type=_port, default=8990, help="port (default %(default)s; 0 picks a free one)")
    _sandbox_args(sandbox)
    sandbox.set_defaults(func=cmd_sandbox)

    from almatools.app import APP_PORT, LAB_PORT, SANDBOX_PORT

    for name, port, what in (("lab", LAB_PORT, "JupyterLab"), ("app", APP_PORT, "Voila")):
        if name == "lab":
            helptext = "JupyterLab on the workspace, with the sandbox unless ALMA_API_KEY is set"
            description = ("Start the sandbox (unless ALMA_API_KEY is set) and JupyterLab on the workspace folder "
                           "(work/ in the checkout), where the kit's notebooks are linked and every output lands. "
                           "Run as root, it passes --allow-root to JupyterLab itself. Arguments after -- go to "
                           "JupyterLab.")
        else:
            helptext = "the notebooks as apps with no code (Voila), with the sandbox unless ALMA_API_KEY is set"
            description = ("Start the sandbox (unless ALMA_API_KEY is set) and Voila on the workspace folder: each "
                           "notebook is a page with its widgets and no code, and the landing page at / lists them. "
                           "Arguments after -- go to Voila.")
        sub = commands.add_parser(name, help=helptext, description=description)
        sub.add_argument("--port", type=_port, default=port, help=f"{what}'s port (default %(default)s)")
        sub.add_argument("--sandbox-port", type=_port, default=SANDBOX_PORT,
                         help="the sandbox's port (default %(default)s; a free one when it is taken; 0 = any free one)")
        sub.add_argument("--workspace", type=Path, help="the workspace folder (default: ALMATOOLS_WORKSPACE, else "
                         "work/ in the kit's checkout)")
        sub.add_argument("--notebooks", type=Path, help="folder of notebooks (default: the kit's notebooks/)")
        sub.add_argument("--no-browser", action="store_true", help="do not open a web browser")
        sub.add_argument("--allow-root", action="store_true",
                         help="accepted for habit's sake: as root, JupyterLab gets --allow-root anyway "
                         "(Voila needs none)")
        _sandbox_args(sub)
        sub.add_argument("jupyter_args", nargs=argparse.REMAINDER, help=f"arguments for {what}, after --")
        sub.set_defaults(func=cmd_lab if name == "lab" else cmd_app)
