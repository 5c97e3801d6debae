"""A resumed worklist takes in the merge requests registration recorded after it was made, and keeps
every decision; ``merge-list`` without ``--users`` says "not checked" instead of failing every pair."""

from __future__ import annotations

import pandas as pd
import pytest
from merge_data import alma_user, clusters_frame

from almatools import merge
from almatools.cli import main as run
from almatools.quality.frame import users_frame
from almatools.registration import record_merge_request


def test_requests_recorded_after_the_worklist_join_it_on_resume(tmp_path):
    requests = tmp_path / "merge_requests.csv"
    record_merge_request(requests, "OLD1", "NEW1", "alum back as staff")
    users = users_frame([alma_user(p) for p in ("A", "B", "OLD1", "NEW1", "OLD2", "NEW2")])
    folder = tmp_path / "worklist"
    worklist = merge.propose(clusters_frame({"c1": ["A", "B"]}), users, set(), requests=requests, folder=folder)
    assert [(p.from_id, p.to_id) for p in worklist.pairs()][-1] == ("OLD1", "NEW1")
    first = worklist.pairs()[0].pair_id
    worklist.reject(first, reviewer="kim")
    # Later, in notebook 01: one more request, plus one for a pair the cluster already has, and a repeat.
    record_merge_request(requests, "OLD2", "NEW2", "moved to a new affiliation")
    record_merge_request(requests, "B", "A", "same person")
    record_merge_request(requests, "OLD1", "NEW1", "asked twice")

    resumed = merge.Worklist.load(folder)
    assert merge.add_requests(resumed, requests, users) == ["P0003"]
    new = resumed.pair("P0003")
    assert (new.from_id, new.to_id, new.source) == ("OLD2", "NEW2", "registration")
    assert "moved to a new affiliation" in new.reason and new.approvable
    assert resumed.pair(first).decision == "rejected"
    assert merge.add_requests(resumed, requests, users) == []  # nothing new the second time

    again = merge.Worklist.load(folder)  # the new pair is kept on disk, with the old decisions
    assert again.pair_ids == ["P0001", "P0002", "P0003"] and again.pair(first).decision == "rejected"
    again.approve("P0003", reviewer="kim")
    assert merge.Worklist.load(folder).pair("P0003").decision == "approved"


def test_new_records_without_users_data_wait_for_the_api_check(tmp_path):
    worklist = merge.propose(clusters_frame({"c1": ["A", "B"]}), users_frame([alma_user("A"), alma_user("B")]),
                             set(), folder=tmp_path / "w")
    requests = pd.DataFrame({"from_primary_id": ["X"], "to_primary_id": ["Y"]})
    (pid,) = merge.add_requests(worklist, requests)
    pair = worklist.pair(pid)
    assert pair.hard_failures == [] and {c.name for c in pair.not_checked} >= {"both_exist"}
    assert not pair.approvable
    with pytest.raises(merge.MergeError, match="Not checked"):
        worklist.approve(pid, reviewer="kim")


def test_a_missing_request_file_adds_nothing(tmp_path):
    worklist = merge.propose(clusters_frame({"c1": ["A", "B"]}))
    assert merge.add_requests(worklist, tmp_path / "none.csv") == []
    assert len(worklist) == 1


def test_merge_list_without_users_says_not_checked(tmp_path, capsys):
    findings = tmp_path / "findings"
    findings.mkdir()
    clusters_frame({"c1": ["A", "B"], "c2": ["C", "D"]}).to_csv(findings / "duplicates.csv", index=False)
    out = tmp_path / "worklist"
    assert run(["merge-list", "--findings", str(findings), "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert "0 fail a hard check" in said and "2 not checked: no users source" in said
    proposals = pd.read_csv(out / "proposals.csv", dtype=str, keep_default_na=False)
    assert set(proposals["hard_failures"]) == {""}
    assert all(text.startswith("Not checked: no users source") for text in proposals["not_checked"])


@pytest.mark.slow
def test_the_notebook_takes_in_requests_recorded_after_the_worklist(sandbox, tmp_path, monkeypatch):
    """Notebook 03 run twice on its defaults (the workspace): a request recorded in between joins the list."""
    import json
    from pathlib import Path

    papermill = pytest.importorskip("papermill")
    notebook = Path(__file__).resolve().parents[2] / "notebooks" / "03_prepare_merge_list.ipynb"
    workspace = tmp_path / "work"
    monkeypatch.setenv("ALMATOOLS_WORKSPACE", str(workspace))  # the kernel inherits it, as under ./kit lab
    params = {"reviewer": "tester", "check_api": False}
    papermill.execute_notebook(str(notebook), str(tmp_path / "run1.ipynb"), parameters=params, progress_bar=False,
                               cwd=str(tmp_path))
    first = merge.Worklist.load(workspace / "merge_worklist")
    assert len(first) > 0
    some = first.pairs()[0].pair_id
    first.reject(some, reviewer="tester")
    record_merge_request(workspace / "merge_requests.csv", "LATE-FROM-1", "LATE-TO-1", "recorded after the list")
    papermill.execute_notebook(str(notebook), str(tmp_path / "run2.ipynb"), parameters=params, progress_bar=False,
                               cwd=str(tmp_path))
    outputs = json.dumps(json.loads((tmp_path / "run2.ipynb").read_text())["cells"])
    assert "Resuming the review" in outputs and "1 new merge requests from registration added" in outputs
    again = merge.Worklist.load(workspace / "merge_worklist")
    late = [p for p in again.pairs() if p.from_id == "LATE-FROM-1"]
    assert len(late) == 1 and late[0].to_id == "LATE-TO-1" and late[0].source == "registration"
    assert again.pair(some).decision == "rejected" and len(again) == len(first) + 1
