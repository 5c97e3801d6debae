"""Helpers of the report tests: a small synthetic institution, report runs, and readers of their files."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pandas as pd
from lxml import html as lxml_html

from almatools.cli import main
from almatools.sandbox.generator import generate_institution

SMALL_USERS = 600
SMALL_SEED = 11
AS_OF = date(2026, 6, 1)  # the institution's "today"; the first report is as of it
LATER = date(2027, 8, 1)  # a later run: records expire and purge dates pass, so findings appear and go


def small_institution(folder: Path) -> Path:
    """600 synthetic users with their SIS extract (users_export.zip, sis_extract.zip, ground_truth.csv)."""
    if not (folder / "institution.json").exists():
        generate_institution(folder, users=SMALL_USERS, seed=SMALL_SEED, today=AS_OF, export=True)
    return folder


def run_report(root: Path, *args: str, users: Path | None = None, sis: Path | None = None) -> int:
    argv = ["report", "--out", str(root), "--quiet", *args]
    if users is not None:
        argv += ["--users", str(users)]
    if sis is not None:
        argv += ["--sis", str(sis)]
    return main(argv)


def runs(root: Path) -> list[Path]:
    """The complete runs in an output root, oldest first."""
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink() and not p.name.startswith("."))


def read_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def page(path: Path):
    return lxml_html.fromstring(path.read_text(encoding="utf-8"))


def number(text: str) -> int:
    return int(text.strip().replace(",", ""))


def count(doc, key: str) -> int:
    """A headline number of the report (``data-count="key"``)."""
    (node,) = doc.xpath(f'//*[@data-count="{key}"]')
    return number(node.text_content())


def table_counts(doc, table_id: str, attribute: str) -> dict[str, int]:
    """{row key: the row's count} of a counts table (rows marked ``data-<attribute>``)."""
    rows = doc.xpath(f'//table[@id="{table_id}"]//tr[@data-{attribute}]')
    return {row.get(f"data-{attribute}"): number(row.xpath('.//td[contains(@class, "count")]')[0].text_content())
            for row in rows}


def finding_key(rule: str, pid: str, other: str, field: str) -> tuple[str, str, str, str]:
    """A finding's identity across runs, computed here independently of almatools.reports."""
    a, b = pid.strip().casefold(), other.strip().casefold()
    if rule == "DUPLICATE":
        a, b = sorted((a, b))
    return rule, a, b, field


def keys_of(findings: pd.DataFrame) -> list[tuple[str, str, str, str]]:
    return [finding_key(*row) for row in findings[["rule_id", "primary_id", "other_primary_id", "field"]]
            .itertuples(index=False)]


def words(text: str) -> set[str]:
    """The whole words of a text (letters, digits and the characters of ids and emails)."""
    return set(re.findall(r"[\w.@+'-]+", text)) | {w.strip(".,'-") for w in re.findall(r"[\w.@+'-]+", text)}
