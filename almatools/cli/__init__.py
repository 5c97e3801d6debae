"""The ``almatools`` command line (also ``python -m almatools``), one module per command group.

The command names and flags are the public contract for scheduled use: keep them stable.

Modules: ``serve`` (sandbox, lab, app), ``register``, ``quality`` (snapshot, quality), ``merge``
(merge-list, merge-verify), ``report``; ``common`` holds what they share. No command imports a
widget library (a meta test checks it): the banner line is :meth:`AlmaClient.banner_text`.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

from almatools import __version__
from almatools.cli.common import _fail, _one_line
from almatools.cli.merge import add_merge_commands
from almatools.cli.quality import add_quality_commands
from almatools.cli.register import add_register_commands
from almatools.cli.report import add_report_commands
from almatools.cli.serve import add_serve_commands
from almatools.errors import AlmaToolsError

__all__ = ["main", "build_parser"]

log = logging.getLogger("almatools")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command (also used to document them)."""
    parser = argparse.ArgumentParser(
        prog="almatools",
        description="A Jupyter operations kit for Ex Libris Alma patron data. With no ALMA_API_KEY set, "
                    "everything works against the local sandbox.")
    parser.add_argument("--version", action="version", version=f"almatools {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    add_serve_commands(commands)
    add_register_commands(commands)
    add_quality_commands(commands)
    add_merge_commands(commands)
    add_report_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command; returns the exit status (0 success, 1 a reported error, 2 bad usage)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "jupyter_args", None) and args.jupyter_args[0] == "--":
        args.jupyter_args = args.jupyter_args[1:]
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    func: Callable[[argparse.Namespace], int] = args.func
    # SIGTERM (a scheduler stopping the job) stops a command as Ctrl-C does: through the same clean-up, so
    # temporary files are removed and no output is left half-written. (sandbox, lab, app and report put
    # their own handlers in place.)
    previous = (signal.signal(signal.SIGTERM, _terminated)
                if threading.current_thread() is threading.main_thread() else None)
    try:
        return func(args)
    except AlmaToolsError as exc:
        return _fail(args.command, str(exc))
    except KeyboardInterrupt:
        _fail(args.command, "stopped (interrupted): finished work is kept and nothing is left half-written; run the "
              "same command again")
        return 130
    except OSError as exc:  # a folder that is a file, a full disk, a permission: say which file and why
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        what = exc.strerror or exc.__class__.__name__
        hint = (" (a part of that path is a file where a folder is needed: --out and --data name folders)"
                if isinstance(exc, NotADirectoryError) else
                " (it is a file where a folder is needed: --out and --data name folders)"
                if isinstance(exc, FileExistsError) else "")
        return _fail(args.command, f"{where}{what}{hint}")
    except MemoryError:
        return _fail(args.command, "ran out of memory; give it a smaller source or a machine with more memory")
    except Exception as exc:  # the last line of defence: one line, the traceback only with -v
        if args.verbose:
            log.error("where it happened", exc_info=True)
        return _fail(args.command, f"unexpected {exc.__class__.__name__}: {_one_line(str(exc))} "
                     "(run with -v to see where; please report it)")
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _terminated(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
