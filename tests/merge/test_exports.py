"""The exports: merge_list.csv (approved only), the review workbook, the printable HTML worklist."""

from __future__ import annotations

import csv
from html.parser import HTMLParser

import pytest
from merge_data import STANDARD_CLUSTERS, STANDARD_SIS, STANDARD_USERS, clusters_frame
from openpyxl import load_workbook

from almatools import merge
from almatools.quality.frame import users_frame


@pytest.fixture
def decided(standard_worklist):
    """P0002 L1→S1 approved (TO SIS-managed), P0003 OLD→NEW approved (TO local), P0004 rejected, P0001 open."""
    standard_worklist.approve("P0002", reviewer="kim", note="checked")
    standard_worklist.approve("P0003", reviewer="lee")
    standard_worklist.reject("P0004", reviewer="kim")
    return standard_worklist


def test_merge_list_has_only_the_approved_pairs(decided):
    path = merge.export_merge_list(decided)
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == merge.MERGE_LIST_COLUMNS
    assert [(r["from_primary_id"], r["to_primary_id"]) for r in rows] == [("L1", "S1"), ("OLD", "NEW")]
    assert rows[0]["reviewer"] == "kim" and rows[0]["decided_at"] and rows[0]["from_name"] == "Lee, Ann"
    assert "loans" in rows[0]["checks"] and rows[1]["checks"] == "all checks passed"
    assert "checked" in rows[0]["note"]


def test_an_approved_pair_that_fails_a_hard_check_since_is_left_out(decided):
    decided.add_facts({"L1": {"exists": False, "source": "api"}})  # someone merged or deleted it meanwhile
    assert decided.pair("P0002").status == "blocked"
    with merge.export_merge_list(decided).open(encoding="utf-8") as handle:
        assert [r["pair_id"] for r in csv.DictReader(handle)] == ["P0003"]


def test_review_workbook_has_a_frozen_filtered_sized_header(decided):
    book = load_workbook(merge.export_review_workbook(decided))
    assert book.sheetnames == ["Pairs", "Held", "Sign-off"]
    sheet = book["Pairs"]
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == sheet.dimensions
    header = [c.value for c in sheet[1]]
    assert header[:3] == ["pair_id", "cluster_id", "status"] and all(c.font.bold for c in sheet[1])
    assert sheet.max_row == 5  # every pair, whatever its status
    statuses = {row[0].value: row[2].value for row in sheet.iter_rows(min_row=2)}
    assert statuses == {"P0001": "proposed", "P0002": "approved", "P0003": "approved", "P0004": "rejected"}
    reason = header.index("reason") + 1
    assert 8 < sheet.column_dimensions[sheet.cell(1, reason).column_letter].width <= 60
    assert book["Held"]["B2"].value == "S2; S3"
    signoff = {row[0].value: row[1].value for row in book["Sign-off"].iter_rows()}
    assert signoff["Reviewed by"] == "kim, lee" and "Signed off by (name)" in signoff


class Sections(HTMLParser):
    """Collects, per <section id=…>, the text of each top-level step of its <ol class="steps">."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: dict[str, list[str]] = {}
        self.current: str | None = None
        self.depth = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            self.current = attrs["id"]
            self.sections[self.current] = []
        elif tag == "li" and self.current:
            self.depth += 1
            if self.depth == 1:
                self.sections[self.current].append("")

    def handle_endtag(self, tag):
        if tag == "li":
            self.depth -= 1
        elif tag == "section":
            self.current = None

    def handle_data(self, data):
        if self.current and self.depth >= 1:
            self.sections[self.current][-1] += data


def test_html_worklist_has_the_alma_steps_for_each_approved_pair(decided):
    parser = Sections()
    parser.feed(merge.export_worklist_html(decided).read_text(encoding="utf-8"))
    assert list(parser.sections) == ["P0002", "P0003"]
    to_sis, to_local = parser.sections["P0002"], parser.sections["P0003"]
    assert to_sis[0] == "Open Admin > User Management > Merge Users."
    assert "search L1" in to_sis[1] and "search S1" in to_sis[2]
    assert "Contact information" in to_sis[3] and "Identifiers" in to_sis[3]
    assert to_sis[4].startswith('Tick "Copy all segments as internal"')  # TO is SIS-managed
    assert "not needed" in to_local[4]                                       # TO is locally managed
    assert any("2 loans move to TO" in step for step in to_sis)
    assert to_sis[-1].startswith("Merge, and confirm")


def test_segments_follow_the_records(make_user):
    frame = users_frame([make_user("F", identifiers=(("BARCODE", "B1"),), email="f@x.org"),
                         make_user("T", email="f@x.org", expiry="2031-01-01")])
    worklist = merge.propose(clusters_frame({"k": ["F", "T"]}), frame, set())
    pair = worklist.pairs()[0]
    assert (pair.from_id, pair.to_id) == ("F", "T")
    segments = {name: copy for name, copy, _ in merge.segments_to_copy(worklist.record(pair.from_id),
                                                                       worklist.record(pair.to_id))}
    assert segments["Identifiers"] is True and segments["Contact information"] is False
    assert segments["Blocks"] is False


def test_exports_need_a_folder(tmp_path):
    worklist = merge.propose(clusters_frame(STANDARD_CLUSTERS), users_frame(STANDARD_USERS), STANDARD_SIS)
    with pytest.raises(merge.MergeError, match="where to write"):
        merge.export_merge_list(worklist)
    paths = merge.export_all(worklist, tmp_path / "out")
    assert sorted(p.name for p in paths.values()) == ["merge_list.csv", "merge_review.xlsx", "merge_worklist.html"]
    assert not list((tmp_path / "out").glob(".*part"))  # written atomically, no leftovers
