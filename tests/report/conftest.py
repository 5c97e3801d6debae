"""Fixtures of the report tests: report runs over a small institution, made once per test run.

``history_root`` holds two unmasked runs of the same records, the second as of a later day (so findings
appear and go); ``masked_root`` one masked run as of the first day.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _report_data import AS_OF, LATER, run_report, runs, small_institution


@pytest.fixture(scope="session")
def institution(tmp_path_factory) -> Path:
    return small_institution(tmp_path_factory.mktemp("report-institution"))


@pytest.fixture(scope="session")
def history_root(institution, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("report-history") / "reports"
    users, sis = institution / "users_export.zip", institution / "sis_extract.zip"
    assert run_report(root, "--today", AS_OF.isoformat(), "--period", "June 2026", users=users, sis=sis) == 0
    assert run_report(root, "--today", LATER.isoformat(), "--period", "August 2027", users=users, sis=sis) == 0
    assert len(runs(root)) == 2
    return root


@pytest.fixture(scope="session")
def masked_root(institution, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("report-masked") / "reports"
    assert run_report(root, "--today", AS_OF.isoformat(), "--mask-pii", users=institution / "users_export.zip",
                      sis=institution / "sis_extract.zip") == 0
    return root
