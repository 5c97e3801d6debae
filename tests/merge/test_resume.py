"""A dead kernel loses nothing: decisions are on disk at once, and a reload replays them."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import textwrap

import pytest

from almatools import merge


def state(worklist: merge.Worklist) -> list[tuple]:
    return [(p.pair_id, p.from_id, p.to_id, p.decision, p.reviewer, p.notes) for p in worklist.pairs()]


def test_decisions_survive_dropping_the_objects(standard_worklist):
    folder = standard_worklist.folder
    standard_worklist.approve("P0002", reviewer="kim", note="same person, checked the birth date")
    standard_worklist.reject("P0004", reviewer="kim")
    standard_worklist.swap("P0003", reviewer="lee")
    before = state(standard_worklist)
    del standard_worklist
    gc.collect()
    again = merge.Worklist.load(folder)
    assert state(again) == before
    assert again.pair("P0003").from_id == "NEW" and again.pair("P0002").notes[0].startswith("same person")
    assert again.next_pending() == "P0001"  # the review resumes at the first undecided pair


def test_a_process_killed_mid_review_keeps_every_written_decision(standard_worklist):
    folder = standard_worklist.folder
    script = textwrap.dedent(f"""
        import os
        from almatools import merge
        w = merge.Worklist.load({str(folder)!r})
        w.approve("P0002", reviewer="kim")
        w.reject("P0004", reviewer="kim")
        os._exit(9)  # no cleanup, no flush at exit: as if the kernel died
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 9, done.stderr
    again = merge.Worklist.load(folder)
    assert [again.pair(p).decision for p in ("P0001", "P0002", "P0003", "P0004")] == [
        "proposed", "approved", "proposed", "rejected"]


def test_a_torn_last_journal_line_is_dropped_and_the_review_goes_on(standard_worklist):
    folder = standard_worklist.folder
    standard_worklist.approve("P0002", reviewer="kim")
    journal = folder / merge.JOURNAL_FILE
    with journal.open("ab") as handle:
        handle.write(b'{"op": "reject", "pair_id": "P00')  # the machine died in the middle of this write
    again = merge.Worklist.load(folder)
    assert again.pair("P0002").decision == "approved" and again.pair("P0004").decision == "proposed"
    assert journal.read_bytes().endswith(b"\n")  # cut back to the last complete line
    again.reject("P0004", reviewer="kim")
    third = merge.Worklist.load(folder)
    assert third.pair("P0004").decision == "rejected" and third.pair("P0002").decision == "approved"
    assert all(json.loads(line) for line in journal.read_text().splitlines())


def test_a_complete_last_line_without_its_newline_is_kept(standard_worklist):
    folder = standard_worklist.folder
    journal = folder / merge.JOURNAL_FILE
    journal.write_text(json.dumps({"op": "reject", "pair_id": "P0004", "reviewer": "kim", "at": "x"}) + "\n"
                       + json.dumps({"op": "approve", "pair_id": "P0003", "reviewer": "kim", "at": "y"}))
    again = merge.Worklist.load(folder)
    assert again.pair("P0003").decision == "approved"
    again.note("P0003", "fine", reviewer="kim")
    assert [json.loads(line)["op"] for line in journal.read_text().splitlines()] == ["reject", "approve", "note"]


def test_a_damaged_line_before_the_end_is_an_error_not_a_silent_loss(standard_worklist):
    folder = standard_worklist.folder
    standard_worklist.approve("P0002", reviewer="kim")
    journal = folder / merge.JOURNAL_FILE
    journal.write_text("garbage\n" + journal.read_text())
    with pytest.raises(merge.MergeError, match="line 1"):
        merge.Worklist.load(folder)


def test_a_worklist_is_never_overwritten_by_accident(standard_worklist, tmp_path):
    standard_worklist.approve("P0002", reviewer="kim")
    with pytest.raises(merge.MergeError, match="already holds a merge worklist"):
        merge.Worklist([], {}).save(standard_worklist.folder)
    assert merge.Worklist.load(standard_worklist.folder).pair("P0002").decision == "approved"
    with pytest.raises(merge.MergeError, match="No merge worklist"):
        merge.Worklist.load(tmp_path / "nowhere")


def test_decisions_need_a_reviewer_and_a_known_pair(standard_worklist):
    with pytest.raises(merge.MergeError, match="reviewer"):
        standard_worklist.approve("P0002", reviewer=" ")
    with pytest.raises(merge.MergeError, match="No pair"):
        standard_worklist.reject("P9999", reviewer="kim")
    assert (standard_worklist.folder / merge.JOURNAL_FILE).read_text() == ""
