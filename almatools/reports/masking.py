"""Masking personal data in a report, and the keyed hashes that identify a finding across runs."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from typing import Any

import pandas as pd

from almatools.reports.runs import _text

_TOKEN_PREFIX = {"id": "ID", "name": "NAME", "email": "EMAIL", "phone": "PHONE", "cluster": "C"}
_WORD = re.compile(r"[\w@.+,'’-]+")
_EDGE = ".,'’-"
_ID_LIKE = re.compile(r"(?=(?:[^\d]*\d){4})[A-Za-z0-9_]{6,}")  # a long code with 4+ digits: AL146187, rjf3728


def _digest(secret: bytes, text: str, size: int) -> str:
    return hmac.new(secret, text.encode("utf-8"), hashlib.sha256).hexdigest()[:size]


class Masker:
    """Tokens for personal data, from a keyed hash: the same value always gets the same token.

    Args:
        secret: the output root's key (:func:`load_secret`).
        enabled: False: :meth:`text` and the column methods return values unchanged (tokens are still
            made for the finding keys).
    """

    def __init__(self, secret: bytes, *, enabled: bool = True) -> None:
        self._secret = secret
        self.enabled = enabled
        self._folded: dict[str, str] = {}  # ids, emails, phones (compared ignoring case) -> token
        self._exact: dict[str, str] = {}  # name words, as written -> token
        # Each learnt record's own values, whatever their form ("yu.xi(at)mailhost.com", a 3-letter id): text
        # about a record has them replaced first, so nothing depends on recognising their shape.
        self._own: dict[str, list[tuple[str, str]]] = {}
        self._own_re: dict[tuple[str, ...], re.Pattern[str] | None] = {}

    def token(self, kind: str, value: Any) -> str:
        """The token of ``value`` (``kind``: ``id``, ``name``, ``email`` or ``phone``); "" for no value."""
        text = _text(value).strip()
        if not text:
            return ""
        return f"{_TOKEN_PREFIX[kind]}-{_digest(self._secret, f'{kind}:{text.casefold()}', 12)}"

    def learn(self, frame: pd.DataFrame | None, *, only: Iterable[str] | None = None) -> None:
        """Remember the personal values of a patron table's records, so free text naming them is masked.

        Args:
            frame: a patron table (:mod:`almatools.quality.frame` columns; missing columns are skipped).
            only: the primary ids (any case) of the records to learn; None: all of them.
        """
        if frame is None or frame.empty or "primary_id" not in frame.columns:
            return
        rows = frame
        if only is not None:
            wanted = {_text(v).strip().casefold() for v in only}
            keys = frame["primary_id"].astype("string").fillna("").str.strip().str.casefold()
            rows = frame[keys.isin(wanted).to_numpy()]
        if rows.empty:
            return

        def values(column: str, split: str | None = None) -> set[str]:
            if column not in rows.columns:
                return set()
            out: set[str] = set()
            for value in rows[column].astype("string").fillna("").tolist():
                out.update(p.strip() for p in (value.split(split) if split else [value]) if p.strip())
            return out
        ids = values("primary_id") | values("identifier_values", ";")
        ids |= {pair.partition("=")[2].strip() for pair in values("identifiers", ";")} - {""}
        for value in ids:
            if len(value) >= 4:
                self._folded[value.casefold()] = self.token("id", value)
        for value in values("email") | values("emails", ";"):
            self._folded[value.casefold()] = self.token("email", value)
        for value in values("phone"):
            if len(value) >= 6:
                self._folded[value.casefold()] = self.token("phone", value)
        self._learn_own(rows)
        for column in ("first_name", "middle_name", "last_name"):
            for value in values(column):
                for word in value.split():
                    for part in {word, *word.split("-")}:
                        part = part.strip(_EDGE)
                        if len(part) >= 2:
                            self._exact[part] = self.token("name", part)

    def _learn_own(self, rows: pd.DataFrame) -> None:
        kinds = (("primary_id", "id", None), ("identifier_values", "id", ";"), ("identifiers", "id", ";"),
                 ("email", "email", None), ("emails", "email", ";"), ("phone", "phone", None),
                 ("first_name", "name", None), ("middle_name", "name", None), ("last_name", "name", None))
        present = [k for k in kinds if k[0] in rows.columns]
        columns = {c: rows[c].astype("string").fillna("").tolist() for c, _k, _s in present}
        for n, pid in enumerate(columns.get("primary_id", [])):
            key = pid.strip().casefold()
            if not key:
                continue
            own = self._own.setdefault(key, [])
            for column, kind, sep in present:
                for part in columns[column][n].split(sep) if sep else [columns[column][n]]:
                    if column == "identifiers":
                        part = part.partition("=")[2]
                    part = part.strip()
                    if part:
                        own.append((part, self.token(kind, part)))
                        if kind == "name":
                            own.extend((w.strip(_EDGE), self.token("name", w.strip(_EDGE))) for w in part.split()
                                       if w.strip(_EDGE))

    def _own_pattern(self, records: tuple[str, ...]) -> tuple[re.Pattern[str] | None, dict[str, str]]:
        tokens: dict[str, str] = {}
        for rec in records:
            for value, token in self._own.get(rec, ()):
                tokens.setdefault(value.casefold(), token)
        if records not in self._own_re:
            if len(self._own_re) > 50_000:
                self._own_re.clear()
            alternatives = sorted(tokens, key=len, reverse=True)
            self._own_re[records] = re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, alternatives)) + r")(?!\w)",
                                               re.IGNORECASE) if alternatives else None
        return self._own_re[records], tokens

    def about(self, value: Any, records: Iterable[Any]) -> str:
        """Free text about some records (a finding's message, a pair's evidence): every value those records
        hold is replaced by its token first, whatever its shape, then :meth:`text` masks the rest."""
        text = _text(value)
        if not self.enabled or not text:
            return text
        keys = tuple(sorted({_text(r).strip().casefold() for r in records} - {""}))
        pattern, tokens = self._own_pattern(keys)
        if pattern is not None:
            text = pattern.sub(lambda m: tokens.get(m.group(0).casefold(), m.group(0)), text)
        return self.text(text)

    def learn_clusters(self, cluster_ids: Iterable[Any]) -> None:
        """Remember duplicate cluster ids: the linkage names a cluster by an unkeyed hash of its members'
        ids, which anyone holding a list of ids could test, so a masked report renames them."""
        for value in cluster_ids:
            text = _text(value).strip()
            if text:
                self._folded[text.casefold()] = self.token("cluster", text)

    def _lookup(self, core: str) -> str | None:
        folded = core.casefold()
        if folded in self._folded:
            return self._folded[folded]
        if core in self._exact:
            return self._exact[core]
        if "@" in core:
            return self.token("email", core)
        if (core.isdigit() and len(core) >= 6) or _ID_LIKE.fullmatch(core):
            return self.token("id", core)
        return None

    def _word(self, match: re.Match[str]) -> str:
        run = match.group(0)
        core = run.strip(_EDGE)
        if not core:
            return run
        lead = run[:run.index(core)]
        trail = run[len(lead) + len(core):]
        found = self._lookup(core)
        if found is not None:
            return lead + found + trail
        parts = re.split(r"([.,'’])", core)  # e.g. "Ramirez,FACULTY" or "name.surname" glued by punctuation
        if len(parts) > 1:
            masked = [self._lookup(p) if p and p not in ".,'’" else None for p in parts]
            if any(m is not None for m in masked):
                return lead + "".join(m if m is not None else p for m, p in zip(masked, parts)) + trail
        return run

    def text(self, value: Any) -> str:
        """Free text with every known or recognisable personal value replaced by its token."""
        text = _text(value)
        if not self.enabled or not text:
            return text
        return _WORD.sub(self._word, text)

    def id(self, value: Any) -> str:
        """An identifier column's value."""
        return self.token("id", value) if self.enabled else _text(value)

    def ids(self, value: Any, sep: str = ";") -> str:
        """A column of ``sep``-joined identifiers."""
        if not self.enabled:
            return _text(value)
        return sep.join(self.token("id", v) for v in _text(value).split(sep) if v.strip())

    def cluster(self, value: Any) -> str:
        """A duplicate cluster id."""
        return self.token("cluster", value) if self.enabled else _text(value)

    def name(self, value: Any) -> str:
        """A name column's value (``First Last`` or ``Last, First``): every word becomes a name token."""
        if not self.enabled:
            return _text(value)
        return re.sub(r"[^\s,]+", lambda m: self.token("name", m.group(0).strip(_EDGE) or m.group(0)), _text(value))

    def frame(self, frame: pd.DataFrame, *, ids: Iterable[str] = (), id_lists: Iterable[str] = (),
              names: Iterable[str] = (), texts: Iterable[str] = (), clusters: Iterable[str] = ()) -> pd.DataFrame:
        """A copy of ``frame`` with the named columns masked (columns it lacks are skipped)."""
        out = frame.copy()
        if not self.enabled:
            return out
        for columns, func in ((ids, self.id), (id_lists, self.ids), (names, self.name), (texts, self.text),
                              (clusters, self.cluster)):
            for column in columns:
                if column in out.columns:
                    out[column] = [func(v) for v in out[column].tolist()]
        return out


# -- finding keys ------------------------------------------------------------------------------------

def finding_key(secret: bytes, rule_id: str, primary_id: str, other_primary_id: str, field_name: str) -> str:
    """The keyed hash that identifies a finding across runs (a duplicate pair in either order)."""
    a, b = _text(primary_id).strip().casefold(), _text(other_primary_id).strip().casefold()
    if rule_id == "DUPLICATE" and b < a:
        a, b = b, a
    return _digest(secret, "\x1f".join(("finding", rule_id, a, b, _text(field_name))), 16)


def _keys(findings: pd.DataFrame, secret: bytes, masker: Masker) -> tuple[list[str], dict[str, list[str]]]:
    """(the key of every finding in order, {key: [rule, id token, other token, field]})."""
    order: list[str] = []
    table: dict[str, list[str]] = {}
    columns = [findings[c].astype("string").fillna("").tolist()
               for c in ("rule_id", "primary_id", "other_primary_id", "field")]
    for rule, pid, other, fld in zip(*columns):
        key = finding_key(secret, rule, pid, other, fld)
        order.append(key)
        if key not in table:
            table[key] = [rule, masker.token("id", pid), masker.token("id", other), fld]
    return order, table
