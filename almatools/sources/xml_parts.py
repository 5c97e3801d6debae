"""One large Alma user XML file cut into parts on ``<user>`` boundaries, so that worker processes can
read it in parallel.

A part is read as its own document: the root's start tag as the file writes it (so the namespace
declarations and ``xml:`` attributes on ``<users>`` still apply), the part's bytes, and ``</users>``.
The first part starts at the file's first byte (its prolog and root are its own) and the last runs to the
file's end (its own end tag and anything after it).

Cuts are only made where they are safe, and only looked for in bounded reads near each nominal cut:

- the file is UTF-8 or ASCII: no byte order mark, an XML declaration (if any) of version 1.0 whose
  encoding is UTF-8 or ASCII (in UTF-8 a ``<`` byte is never part of another character);
- no DOCTYPE (it could declare entities a part would not know), and the root is ``<users>``;
- a cut is at a ``<user>`` start tag (``<user>``, ``<user ``, ``<user/>``). Such bytes inside a comment,
  CDATA section or processing instruction, or inside an element other than ``<users>``, leave the part
  before the cut unfinished: that part then fails to parse, and the caller reads the file whole instead,
  so a file that is not as expected gets exactly the errors a whole read gives.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import IO

from almatools.sources.base import MAX_RECORD_BYTES

PART_BYTES = 48 << 20
"""An ``.xml`` file larger than this is read in parts of at most this size, when it can be cut safely
(and more than one worker process may read it)."""
_HEAD_BYTES = 1 << 16  # the prolog and the root's start tag must lie within this many bytes
_SCAN = 1 << 20  # bytes read at a time when looking for a cut
_DECLARATION = re.compile(rb"<\?xml\s+([^?]*)\?>")
_PSEUDO_ATTRIBUTE = re.compile(rb"""(version|encoding|standalone)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_ENCODINGS = frozenset({b"utf-8", b"us-ascii", b"ascii"})
_ROOT = re.compile(rb"""<([A-Za-z_][\w.\-]*)((?:\s+[^\s=/>]+\s*=\s*(?:"[^"<]*"|'[^'<]*'))*)\s*>""")
_USER_START = re.compile(rb"<user[\s/>]")
_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff", b"\xff\xfe\x00\x00")


@dataclass(frozen=True)
class XmlSplit:
    """Where a file is cut.

    Attributes:
        head: The root's start tag, as the file writes it (the start of every part but the first).
        tail: The root's end tag (the end of every part but the last).
        bounds: Byte offsets: part ``k`` is ``bounds[k]:bounds[k + 1]``; the first is 0, the last the size.
    """

    head: bytes
    tail: bytes
    bounds: tuple[int, ...]


def root_start(data: bytes) -> tuple[bytes, int] | None:
    """The root's start tag of a document that may be cut, and where it ends; None when it may not be.

    Args:
        data: The document's first bytes (at most :data:`_HEAD_BYTES` are looked at).
    """
    data = data[:_HEAD_BYTES]
    if data.startswith(_BOMS):
        return None
    pos = 0
    if data.startswith(b"<?xml") and (m := _DECLARATION.match(data)):
        fields = {k: (a if a is not None else b) for k, a, b in _PSEUDO_ATTRIBUTE.findall(m.group(1))}
        if fields.get(b"version", b"1.0") != b"1.0" or fields.get(b"encoding", b"utf-8").lower() not in _ENCODINGS:
            return None
        pos = m.end()
    elif data.startswith(b"<?xml"):
        return None
    while True:  # the prolog: white space, comments and processing instructions only
        while pos < len(data) and data[pos] in b" \t\r\n":
            pos += 1
        if data.startswith(b"<!--", pos):
            end = data.find(b"-->", pos + 4)
            if end < 0:
                return None
            pos = end + 3
        elif data.startswith(b"<?", pos):
            end = data.find(b"?>", pos + 2)
            if end < 0:
                return None
            pos = end + 2
        else:
            break
    m = _ROOT.match(data, pos)  # a DOCTYPE (<!), a self-closed or other root: not cut
    if m is None or m.group(1) != b"users":
        return None
    return data[pos:m.end()], m.end()


def _next_user(fh: IO[bytes], pos: int, size: int) -> int | None:
    """The offset of the first ``<user`` start tag at or after ``pos`` (bounded: a record is at most
    :data:`MAX_RECORD_BYTES`), or None."""
    limit = min(size, pos + MAX_RECORD_BYTES + _SCAN)
    fh.seek(pos)
    carry = b""
    start = pos
    while start < limit:
        chunk = fh.read(min(_SCAN, limit - start))
        if not chunk:
            return None
        data = carry + chunk
        if m := _USER_START.search(data):
            return start - len(carry) + m.start()
        carry = data[-5:]  # "<user" may straddle two reads
        start += len(chunk)
    return None


def split_points(fh: IO[bytes], size: int, part: int) -> XmlSplit | None:
    """Where to cut an Alma user XML file into parts of about ``part`` bytes; None when it is not cut.

    Args:
        fh: The file, open for binary reading (it is read from its start, then near each cut).
        size: The file's size in bytes.
        part: The wanted size of a part.
    """
    fh.seek(0)
    found = root_start(fh.read(_HEAD_BYTES))
    if found is None:
        return None
    head, body = found
    bounds = [0]
    for k in range(1, math.ceil(size / part)):
        cut = _next_user(fh, max(k * part, bounds[-1] + 1, body), size)
        if cut is None:
            break
        if cut > bounds[-1]:
            bounds.append(cut)
    if len(bounds) < 2:
        return None
    bounds.append(size)
    return XmlSplit(head, b"</users>", tuple(bounds))


class PartReader:
    """A part of a file read as its own document: ``head``, the bytes ``start:end``, ``tail``.

    Counts the newlines of the file's own bytes it has given (to number lines across the whole file).
    """

    def __init__(self, fh: IO[bytes], head: bytes, start: int, end: int, tail: bytes) -> None:
        self._fh = fh
        self._pending = [head]
        self._left = end - start
        self._tail = tail
        self._given = 0
        self.newlines = 0
        fh.seek(start)

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes of the part (all that is left when ``n`` is negative)."""
        if n < 0:
            n = 1 << 62
        out = []
        while n > 0:
            if self._pending:
                piece = self._pending[0][:n]
                rest = self._pending[0][len(piece):]
                if rest:
                    self._pending[0] = rest
                else:
                    self._pending.pop(0)
            elif self._left > 0:
                piece = self._fh.read(min(n, self._left))
                if not piece:
                    raise OSError(f"the file ended {self._left:,} bytes early (was it changed while read?)")
                self._left -= len(piece)
                self.newlines += piece.count(b"\n")
                if self._left == 0:
                    self._pending.append(self._tail)
                    self._tail = b""
            else:
                break
            out.append(piece)
            n -= len(piece)
        data = b"".join(out)
        self._given += len(data)
        return data

    def tell(self) -> int:
        """Bytes given so far."""
        return self._given
