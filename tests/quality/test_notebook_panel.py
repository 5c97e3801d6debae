"""The findings panel, driven headless: filters, the cluster view and the export."""

from __future__ import annotations

import pandas as pd
import pytest
from _quality_data import institution

from almatools.labels import label
from almatools.policy import load_policy
from almatools.quality import analyse
from almatools.sources import load_sis, load_users
from almatools.ui.quality import PAGE_SIZE, build_findings_panel, build_possible_review, filter_findings


@pytest.fixture(scope="module")
def result(sandbox_dir):
    folder, today = institution(sandbox_dir)
    users, sis = load_users(folder / "users_export.zip"), load_sis(folder / "sis_extract.zip")
    return analyse(users, sis, load_policy(), today=today)


@pytest.fixture
def panel(result, tmp_path):
    return build_findings_panel(result, export_dir=tmp_path / "export")


def test_filters_narrow_the_table(result, panel):
    c = panel.controls
    total = len(result.findings)
    assert total > 2 * PAGE_SIZE
    assert f"<b>{total:,}</b> findings" in c.count.value
    assert c.table.value.count("<tr>") == PAGE_SIZE + 1  # the header and one page
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
        assert list(written.columns) == [label(c) for c in result.findings.columns]  # headings for people
        written = written.rename(columns={label(c): c for c in result.findings.columns})
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


def test_the_table_is_paged_with_what_to_do_and_human_labels(result, panel):
    c = panel.controls
    total = len(result.findings)
    pages = -(-total // PAGE_SIZE)
    assert f"page 1 of {pages}" in c.page.value and c.previous.disabled and not c.next.disabled
    for heading in ("Rule", "Severity", "Primary id", "Problem", "What to do"):
        assert f">{heading}</th>" in c.table.value
    assert ">rule_id<" not in c.table.value and ">action<" not in c.table.value
    first_page = c.table.value
    c.next.click()
    assert f"page 2 of {pages}" in c.page.value and not c.previous.disabled and c.table.value != first_page
    in_order = result.findings.sort_values("severity", kind="stable",
                                           key=lambda s: s.map({"error": 0, "warning": 1, "info": 2}))
    second = in_order.iloc[PAGE_SIZE:2 * PAGE_SIZE]  # errors first, then warnings, then info
    assert all(str(pid) in c.table.value for pid in second["primary_id"])
    for _ in range(pages + 3):  # past the end stays on the last page
        c.next.click()
    assert f"page {pages} of {pages}" in c.page.value and c.next.disabled
    assert c.table.value.count("<tr>") == 1 + (total - (pages - 1) * PAGE_SIZE)
    c.rule.value = ("EXPIRED_ACTIVE",)  # a new filter starts again at page 1
    assert "page 1 of" in c.page.value
    import html as _html

    action = result.findings.loc[result.findings["rule_id"] == "EXPIRED_ACTIVE", "action"].iloc[0]
    assert _html.escape(action) in c.table.value


def test_cluster_records_use_human_labels(result, panel):
    c = panel.controls
    c.cluster.value = result.clusters["cluster_id"].iloc[0]
    assert ">line1<" not in c.cluster_view.value and ">primary_id<" not in c.cluster_view.value
    assert ">Primary id</th>" in c.cluster_view.value


def test_the_review_of_possible_pairs_is_kept_and_used_by_the_next_run(sandbox_dir, tmp_path):
    from almatools.quality.frame import users_frame
    from almatools.quality.review import PairDecisions

    folder, today = institution(sandbox_dir)
    users = load_users(folder / "users_export.zip")
    path = tmp_path / "pair_decisions.jsonl"
    first = analyse(users, None, load_policy(), today=today, decisions=path)
    assert len(first.possible) >= 2, "the sandbox plants pairs the linkage is not sure of"
    panel = build_findings_panel(first, export_dir=tmp_path / "export", decisions=path)
    box = panel.controls.possible
    children = list(panel.children)
    assert children.index(box) == children.index(panel.controls.cluster_view) + 1  # after the clusters
    c = box.controls
    assert c.same.disabled and f"{len(first.possible):,} of {len(first.possible):,} pairs not decided" in c.count.value
    c.pick.value = 0
    a, b = first.possible.loc[0, ["primary_id_l", "primary_id_r"]]
    assert f">{a}</th>" in c.view.value and f">{b}</th>" in c.view.value and "Why it is only possible" in c.view.value
    c.same.click()
    assert "are the same person" in c.status.value and c.pick.value == 1  # on to the next pair
    x, y = first.possible.loc[1, ["primary_id_l", "primary_id_r"]]
    c.different.click()
    assert PairDecisions(path).lookup(a, b) == "same" and PairDecisions(path).lookup(y, x) == "different"

    again = analyse(users, None, load_policy(), today=today, decisions=path)  # the next run reads the journal
    linked = {frozenset(p) for p in zip(again.pairs["primary_id_l"], again.pairs["primary_id_r"])}
    offered = {frozenset(p) for p in zip(again.possible["primary_id_l"], again.possible["primary_id_r"])}
    assert frozenset((a, b)) in linked and frozenset((x, y)) not in linked | offered
    assert set(again.possible.loc[again.possible["primary_id_l"] == a, "decision"]) <= {"", "same"}

    empty = build_possible_review(analyse(users_frame([]), None, load_policy(), today=today, decisions=path))
    assert empty.controls.same.disabled and "(no pair to review)" in str(empty.controls.pick.options)


def test_export_defaults_to_the_workspace(result, monkeypatch, tmp_path):
    monkeypatch.setenv("ALMATOOLS_WORKSPACE", str(tmp_path / "ws"))
    panel = build_findings_panel(result)
    assert panel.controls.folder.value == str(tmp_path / "ws" / "quality-output")
    panel.controls.export.click()
    assert (tmp_path / "ws" / "quality-output" / "findings.csv").is_file()


def test_the_table_says_what_each_rule_is_and_shows_errors_first(result, panel):
    """A librarian reads "Expired but still active", not only EXPIRED_ACTIVE; and starts with the errors."""
    from almatools.catalog import RULES

    c = panel.controls
    assert "Errors come first" in c.count.value and " errors, " in c.count.value
    rows = c.table.value.split("<tbody>")[1].split("</tr>")[:-1]
    severities = [next(s for s in ("error", "warning", "info") if f">{s}</b>" in r) for r in rows]
    assert severities == sorted(severities, key=["error", "warning", "info"].index)  # errors before warnings
    for rule_id in set(result.findings["rule_id"].iloc[:PAGE_SIZE]) & {r for r in RULES if f">{r}<" in c.table.value}:
        assert RULES[rule_id].title.split(":")[0] in c.table.value
    c.rule.value = ("EXPIRED_ACTIVE",)
    assert "Expired but still active<br>" in c.table.value and ">EXPIRED_ACTIVE</span>" in c.table.value


def test_a_run_with_no_duplicates_says_so(tmp_path):
    users = pd.DataFrame({"primary_id": ["CB100001", "CB100002"], "first_name": ["Ada", "Alan"],
                          "last_name": ["Lovelace", "Turing"], "user_group": ["COMMUNITY", "COMMUNITY"],
                          "account_type": ["INTERNAL", "INTERNAL"], "status": ["ACTIVE", "ACTIVE"]})
    source = tmp_path / "users.csv"
    users.to_csv(source, index=False)
    result = analyse(load_users(source), None, load_policy(), decisions=tmp_path / "d.jsonl")
    assert result.clusters.empty
    c = build_findings_panel(result, export_dir=tmp_path / "export", decisions=tmp_path / "d.jsonl").controls
    assert c.cluster.options == (("(no duplicate clusters found)", ""),)
    c.export.click()
    assert "findings written to" in c.status.value and (tmp_path / "export" / "duplicates.csv").is_file()
