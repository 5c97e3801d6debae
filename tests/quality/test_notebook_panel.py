"""The findings panel, driven headless: filters, the cluster view and the export."""

from __future__ import annotations

import pandas as pd
import pytest
from _quality_data import institution

from almatools.policy import load_policy
from almatools.quality import analyse
from almatools.sources import load_sis, load_users
from almatools.ui.quality import build_findings_panel, filter_findings


@pytest.fixture(scope="module")
def result(sandbox_dir):
    folder, today = institution(sandbox_dir)
    users, sis = load_users(folder / "users_export.zip"), load_sis(folder / "sis_extract.zip")
    return analyse(users, sis, load_policy(), today=today)


@pytest.fixture
def panel(result, tmp_path):
    return build_findings_panel(result, export_dir=tmp_path / "export", max_rows=50)


def test_filters_narrow_the_table(result, panel):
    c = panel.controls
    total = len(result.findings)
    assert f"<b>{total:,}</b> findings" in c.count.value and "(the first 50 below)" in c.count.value
    assert c.table.value.count("<tr>") == 51
    c.rule.value = ("EXPIRED_ACTIVE", "NO_PURGE_DATE")
    chosen = result.findings[result.findings["rule_id"].isin(c.rule.value)]
    assert f"<b>{len(chosen):,}</b> findings" in c.count.value
    assert "BAD_EMAIL" not in c.table.value and "EXPIRED_ACTIVE" in c.table.value
    c.severity.value = "info"
    assert "<b>0</b> findings" in c.count.value
    c.rule.value, c.severity.value = (), "warning"
    c.group.value = ("ALUMNI",)
    shown = filter_findings(result.findings, groups=("ALUMNI",), severity="warning")
    assert len(shown) and f"<b>{len(shown):,}</b> findings" in c.count.value
    assert set(shown["user_group"]) == {"ALUMNI"} and set(shown["severity"]) == {"warning"}


def test_a_cluster_side_by_side_with_differences_highlighted(result, panel):
    pytest.importorskip("almatools.quality.duplicates")
    c = panel.controls
    assert c.cluster_view.value == ""
    sizes = result.clusters.groupby("cluster_id").size()
    cid = sizes.index[0]
    c.cluster.value = cid
    members = result.clusters.loc[result.clusters["cluster_id"] == cid, "primary_id"]
    view = c.cluster_view.value
    assert all(m in view for m in members)
    assert "background:#fff3b0" in view  # the primary ids differ at least
    assert "<li>" in view  # the linked pairs with their evidence
    c.cluster.value = ""
    assert c.cluster_view.value == ""


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_export_writes_the_filtered_findings(result, panel, tmp_path, fmt):
    c = panel.controls
    c.rule.value = ("STALE_SIS_MISSING",)
    c.format.value = fmt
    c.export.click()
    out = tmp_path / "export"
    if fmt == "csv":
        written = pd.read_csv(out / "findings.csv", dtype=str)
        assert len(pd.read_csv(out / "duplicates.csv")) == len(result.clusters)
    else:
        written = pd.read_excel(out / "findings.xlsx", sheet_name="findings", dtype=str)
        assert len(pd.read_excel(out / "findings.xlsx", sheet_name="duplicates")) == len(result.clusters)
    expected = result.findings[result.findings["rule_id"] == "STALE_SIS_MISSING"]
    assert sorted(written["primary_id"]) == sorted(expected["primary_id"])
    assert f"{len(expected):,} findings written" in c.status.value


def test_export_to_a_folder_that_cannot_be_made(panel, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    panel.controls.folder.value = str(blocker / "sub")
    panel.controls.export.click()
    assert "Export failed" in panel.controls.status.value
