"""The outputs: the users as a stream, the zips of user XML, the ground truth and institution.json."""

from __future__ import annotations

import csv
import json
import os
import tempfile
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any

from almatools.models import user_to_xml_bytes, write_users_xml
from almatools.quality.catalog import RULES
from almatools.sandbox.generator.people import SIS_PROFILE, load_policy
from almatools.sandbox.generator.plan import MAX_USERS, chunks
from almatools.sandbox.generator.records import sis_json, user_json

FILE_USERS = 20_000
"""Users per XML file in the zips (SIS scripts keep files to about this size)."""
GROUND_TRUTH_COLUMNS = ("rule_id", "primary_id", "other_primary_id", "cluster_id", "detail")


@dataclass(frozen=True)
class InstitutionInfo:
    """What :func:`generate_institution` made.

    Attributes:
        users: Number of Alma user records.
        seed: The random seed.
        today: The reference date all dates are relative to.
        sis_profile: The SIS integration profile code (``external_id`` of SIS-managed records).
        counts: Records per user group (``UGRAD``…), ground-truth rows per rule id (``DUPLICATE``…,
            ``NOT_DUPLICATE``), and ``users``, ``sis_extract_users`` (people in the extract) and
            ``sis_new_users`` (people in the extract that Alma does not have yet).
    """

    users: int
    seed: int
    today: date
    sis_profile: str
    counts: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        """The info as a JSON-ready dict (``today`` as ISO date)."""
        d = asdict(self)
        d["today"] = self.today.isoformat()
        return d


def iter_sandbox_users(users: int = 5000, *, seed: int = 0, today: date | None = None) -> Iterator[dict[str, Any]]:
    """Yield the Alma user objects of the synthetic institution, without writing any file.

    The same records, in the same order, that :func:`generate_institution` passes to its sink.
    """
    today = today or date.today()
    for chunk in chunks(users, seed, today):
        for r in chunk.alma:
            yield user_json(r, chunk.groups)


class _ZipXml:
    """Writes users to a zip of ``<users>`` files of at most FILE_USERS each, with bounded memory."""

    def __init__(self, path: Path, prefix: str, today: date) -> None:
        self.zf = zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, allowZip64=True)
        self.prefix, self.stamp = prefix, (today.year, today.month, today.day, 0, 0, 0)
        self.tmp = tempfile.TemporaryFile()
        self.n = self.files = 0

    def add(self, fragment: bytes) -> None:
        self.tmp.write(fragment + b"\n")  # one user per line: text newlines are escaped
        self.n += 1
        if self.n == FILE_USERS:
            self.flush()

    def flush(self) -> None:
        self.files += 1
        info = zipfile.ZipInfo(f"{self.prefix}_{self.files:04d}.xml", self.stamp)
        info.compress_type, info.create_system, info.external_attr = zipfile.ZIP_DEFLATED, 3, 0o644 << 16
        setattr(info, "compress_level" if hasattr(info, "compress_level") else "_compresslevel", 1)
        self.tmp.seek(0)
        with self.zf.open(info, "w") as out:
            write_users_xml(out, (line[:-1] for line in self.tmp), self.n)
        self.tmp.seek(0)
        self.tmp.truncate()
        self.n = 0

    def close(self) -> None:
        if self.n or not self.files:
            self.flush()
        self.tmp.close()
        self.zf.close()

    def abort(self) -> None:
        self.tmp.close()
        try:
            self.zf.close()
        except (OSError, ValueError):
            pass


def generate_institution(out_dir: Path, *, users: int = 5000, seed: int = 0, today: date | None = None,
                         sink: Callable[[list[dict[str, Any]]], None] | None = None, export: bool = False,
                         progress: bool = False) -> InstitutionInfo:
    """Generate Sandbox University: its users, SIS extract and the ground truth of planted problems.

    Args:
        out_dir: Directory for ``sis_extract.zip``, ``ground_truth.csv``, ``institution.json`` and
            (with ``export``) ``users_export.zip``; created if missing. Files are written under a
            temporary name and renamed when complete.
        users: Number of Alma user records (at most :data:`MAX_USERS`).
        seed: Random seed; with ``users`` and ``today`` it fixes every byte of the output.
        today: The date the data is "as of" (default: the real today).
        sink: Called with each batch (up to 5,000) of full Alma user objects, e.g. to load a store.
        export: Also write every Alma user as Export Users v2 XML.
        progress: Show a progress bar (tqdm).

    Returns:
        The :class:`InstitutionInfo` (also written to ``institution.json``).

    Raises:
        ValueError: ``users`` is out of range.
    """
    today = today or date.today()
    if not 0 <= users <= MAX_USERS:
        raise ValueError(f"users must be between 0 and {MAX_USERS:,}, not {users}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = ["sis_extract.zip", "ground_truth.csv"] + (["users_export.zip"] if export else [])
    parts = {n: out / f".{n}.part" for n in names}
    counts: Counter[str] = Counter({g: 0 for g in load_policy()[0]})
    counts.update({rule: 0 for rule in (*RULES, "NOT_DUPLICATE")})
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=users, unit="user", desc="Sandbox University")
    sis = _ZipXml(parts["sis_extract.zip"], "sis", today)
    exp = _ZipXml(parts["users_export.zip"], "users", today) if export else None
    try:
        with open(parts["ground_truth.csv"], "w", newline="", encoding="utf-8") as gt:
            writer = csv.writer(gt, lineterminator="\n")
            writer.writerow(GROUND_TRUTH_COLUMNS)
            for chunk in chunks(users, seed, today):
                batch = [user_json(r, chunk.groups) for r in chunk.alma]
                for r, u in zip(chunk.alma, batch):
                    counts[r.group] += 1
                    if exp is not None:
                        exp.add(user_to_xml_bytes(u, xml_declaration=False))
                    if r.in_sis:
                        sis.add(user_to_xml_bytes(sis_json(u), xml_declaration=False))
                for r in chunk.sis_only:
                    sis.add(user_to_xml_bytes(sis_json(user_json(r, chunk.groups)), xml_declaration=False))
                counts["sis_extract_users"] += sum(r.in_sis for r in chunk.alma) + len(chunk.sis_only)
                in_alma = {r.primary_id.casefold() for r in chunk.alma}
                counts["sis_new_users"] += sum(r.primary_id.casefold() not in in_alma for r in chunk.sis_only)
                counts.update(row[0] for row in chunk.rows)
                writer.writerows(chunk.rows)
                if sink is not None:
                    sink(batch)
                if bar is not None:
                    bar.update(len(batch))
        sis.close()
        if exp is not None:
            exp.close()
        for n, part in parts.items():
            os.replace(part, out / n)
    except BaseException:
        for w in (sis, exp):
            if w is not None:
                w.abort()
        for part in parts.values():
            part.unlink(missing_ok=True)
        raise
    finally:
        if bar is not None:
            bar.close()
    counts["users"] = users
    info = InstitutionInfo(users, seed, today, SIS_PROFILE, dict(sorted(counts.items())))
    tmp = out / ".institution.json.part"
    tmp.write_text(json.dumps(info.to_json(), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, out / "institution.json")
    return info
