"""What every command shares: printing, the one-line failure message, the client of the environment."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

__all__: list[str] = []


def _port(text: str) -> int:
    """An argparse type: a TCP port number, 0 to 65535 (0: any free one)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a port number from 0 to 65535, not {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number from 0 to 65535, not {value}")
    return value


def _at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number of ``minimum`` or more."""
    def whole(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number of {minimum} or more, not {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {minimum} or more, not {value}")
        return value
    return whole


_at_least_one = _at_least(1)  # workers
_at_least_zero = _at_least(0)  # counts, limits, seconds


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
