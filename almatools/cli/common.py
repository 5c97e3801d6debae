"""What every command shares: printing, the one-line failure message, the client of the environment."""

from __future__ import annotations

import sys

__all__: list[str] = []


def _say(message: str) -> None:
    print(message, flush=True)


def _warn(message: str) -> None:
    """A line on standard error (the command goes on)."""
    print(message, file=sys.stderr, flush=True)


def _client(dry_run: bool = False):
    """A client of real Alma when ALMA_API_KEY is set, else of the sandbox (started in this process)."""
    import almatools

    return almatools.connect(dry_run=dry_run)


def _one_line(text: str, limit: int = 300) -> str:
    """A message on one line, cut to ``limit`` characters (a hostile value can be megabytes long)."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _fail(command: str, message: str) -> int:
    print(f"almatools {command}: {_one_line(message, 2000)}", file=sys.stderr)
    return 1
