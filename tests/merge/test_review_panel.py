"""The review panel, driven headless: set ``.value``, call ``.click()``, read the HTML widgets."""

from __future__ import annotations

import re

import pytest

from almatools import merge
from almatools.errors import AlmaToolsError
from almatools.ui.merge_review import build_merge_exports, build_merge_review


@pytest.fixture
def panel(standard_worklist):
    return build_merge_review(standard_worklist, reviewer="kim")


def on_disk(panel) -> merge.Worklist:
    return merge.Worklist.load(panel.worklist.folder)


def test_opens_at_the_first_pair_side_by_side_with_differences_highlighted(panel):
    assert panel.current == "P0001" and "Pair 1 of 4" in panel.header.value
    rows = dict(re.findall(r"<th[^>]*>([^<]+)</th><td style='([^']*)'>", panel.compare.value))
    assert "fff2a8" in rows["First name"]          # Anne against Ann
    assert "fff2a8" in rows["Account type"]        # INTERNAL against EXTERNAL
    assert "fff2a8" not in rows["Last name"]       # Lee on both
    assert "FROM: merged away" in panel.compare.value and "TO: kept" in panel.compare.value
    assert "cannot approve" in panel.details.value and "staff roles" in panel.details.value


def test_a_pair_failing_a_hard_check_cannot_be_approved(panel):
    assert panel.approve_button.disabled
    panel.approve_button.click()  # a click that gets through anyway is refused by the worklist
    assert "cannot be approved" in panel.message.value
    assert on_disk(panel).pair("P0001").decision == "proposed"


def test_approve_saves_at_once_and_moves_to_the_next_undecided_pair(panel):
    panel.next_button.click()
    assert panel.current == "P0002" and not panel.approve_button.disabled
    assert "loans" in panel.details.value  # the soft warning is shown
    panel.approve_button.click()
    assert on_disk(panel).pair("P0002").decision == "approved"
    assert on_disk(panel).pair("P0002").reviewer == "kim"
    assert panel.current == "P0003" and "saved" in panel.message.value


def test_reject_swap_note_and_previous(panel):
    panel.show("P0004")
    panel.swap_button.click()
    assert on_disk(panel).pair("P0004").from_id == "B" and "swapped" in panel.message.value
    assert panel.current == "P0004"  # a swap stays on the pair so it can be approved next
    panel.note_text.value = "asked the patron at the desk"
    panel.note_button.click()
    assert panel.note_text.value == "" and "asked the patron" in on_disk(panel).pair("P0004").notes[0]
    panel.reject_button.click()
    assert on_disk(panel).pair("P0004").decision == "rejected"
    assert panel.current == "P0001"  # on to the next undecided pair, wrapping round
    panel.previous_button.click()
    assert panel.current == "P0004"


def test_the_command_box_drives_the_review_from_the_keyboard(panel):
    panel.command.value = "g P0003"
    assert panel.current == "P0003" and panel.command.value == ""
    panel.command.value = "n checked the alumni record"
    panel.command.value = "a"
    saved = on_disk(panel).pair("P0003")
    assert saved.decision == "approved" and "checked the alumni record" in saved.notes[0]
    panel.command.value = "g P0004"
    panel.command.value = "s"
    assert on_disk(panel).pair("P0004").from_id == "B"
    panel.command.value = "r"
    assert on_disk(panel).pair("P0004").decision == "rejected" and panel.current == "P0001"
    panel.command.value = "k"
    assert panel.current == "P0004"
    panel.command.value = "j"
    assert panel.current == "P0001"
    panel.command.value = "x"
    assert "Unknown command" in panel.message.value


def test_resumes_where_the_review_stopped(standard_worklist):
    standard_worklist.reject("P0001", reviewer="kim")
    standard_worklist.approve("P0002", reviewer="kim")
    again = build_merge_review(merge.Worklist.load(standard_worklist.folder), reviewer="lee")
    assert again.current == "P0003"


def test_needs_a_reviewer_and_copes_with_an_empty_worklist(standard_worklist):
    with pytest.raises(AlmaToolsError, match="reviewer"):
        build_merge_review(standard_worklist, reviewer="")
    empty = build_merge_review(merge.Worklist([], {}), reviewer="kim")
    assert "Nothing to review" in empty.header.value and empty.approve_button.disabled


def test_the_export_button_writes_the_three_files(standard_worklist):
    standard_worklist.approve("P0002", reviewer="kim")
    panel = build_merge_exports(standard_worklist)
    panel.button.click()
    assert "1 approved pairs" in panel.result.value
    for name in ("merge_list.csv", "merge_review.xlsx", "merge_worklist.html"):
        assert (standard_worklist.folder / name).is_file()


def test_the_export_says_a_merge_cannot_be_undone_before_the_button(standard_worklist):
    """Alma's Merge Users deletes the FROM record for good: the page says so above the export button."""
    panel = build_merge_exports(standard_worklist)
    assert panel.children.index(panel.warning) < next(i for i, w in enumerate(panel.children) if panel.button in
                                                      getattr(w, "children", ()))
    assert "cannot be undone" in panel.warning.value and "deletes the FROM record" in panel.warning.value
    standard_worklist.approve("P0002", reviewer="kim")
    panel.button.click()
    assert "none can be undone" in panel.result.value
