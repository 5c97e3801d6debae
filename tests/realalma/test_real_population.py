"""``almatools quality`` and ``almatools report`` on real Alma users' records (the recorded fixtures of
tests/fixtures/alma, see its README): a handful of people with no duplicates among them, and one user.

Real records carry what the sandbox never writes (preferred names, several addresses, notes, blocks,
statistics without ``category_type``…); the runs must end with exit 0 and no duplicate.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from almatools.cli import main

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "alma"
REAL_USERS = sorted(FIXTURES.glob("user_full_*.json"))


def _jsonl(path: Path, files: list[Path]) -> Path:
    path.write_text("".join(json.dumps(json.loads(f.read_text(encoding="utf-8"))) + "\n" for f in files),
                    encoding="utf-8")
    return path


@pytest.mark.parametrize("count", [len(REAL_USERS), 1], ids=["all real users", "one real user"])
def test_quality_on_real_users(tmp_path, capsys, count):
    assert len(REAL_USERS) >= 3
    users = _jsonl(tmp_path / "users.jsonl", REAL_USERS[:count])
    assert main(["quality", "--users", str(users), "--sis", "none", "--out", str(tmp_path / "out"), "--quiet"]) == 0
    assert f"Users: {count:,}" in capsys.readouterr().out
    assert pd.read_csv(tmp_path / "out" / "duplicates.csv").empty
    findings = pd.read_csv(tmp_path / "out" / "findings.csv", dtype=str, keep_default_na=False)
    assert "DUPLICATE" not in set(findings["rule_id"])


@pytest.mark.slow
@pytest.mark.parametrize("count", [len(REAL_USERS), 1], ids=["all real users", "one real user"])
def test_report_on_real_users(tmp_path, count):
    users = _jsonl(tmp_path / "users.jsonl", REAL_USERS[:count])
    out = tmp_path / "report"
    assert main(["report", "--out", str(out), "--users", str(users), "--quiet"]) == 0
    run = out / (out / "latest.txt").read_text(encoding="utf-8").strip()
    html = (run / "report.html").read_text(encoding="utf-8")
    assert "Duplicate clusters" in html or "duplicate" in html.lower()
    summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    assert summary["users"] == count and summary["duplicate_pairs"] == 0
