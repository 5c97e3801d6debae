"""The merge notebook end to end with papermill: proposals from the sandbox, the API check, and a resumed run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from almatools import merge

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "03_prepare_merge_list.ipynb"


@pytest.mark.slow
def test_the_notebook_proposes_checks_and_resumes(sandbox, tmp_path):
    papermill = pytest.importorskip("papermill")
    worklist_dir = tmp_path / "worklist"
    params = {"worklist_dir": str(worklist_dir), "reviewer": "tester"}
    papermill.execute_notebook(str(NOTEBOOK), str(tmp_path / "run1.ipynb"), parameters=params, progress_bar=False,
                               cwd=str(tmp_path))
    worklist = merge.Worklist.load(worklist_dir)
    assert len(worklist) > 0, "the sandbox's planted duplicates should give pairs"
    assert {worklist.record(p.from_id)["source"] for p in worklist.pairs()} == {"api"}  # the API check ran
    pid = worklist.pairs(status="proposed")[0].pair_id
    worklist.reject(pid, reviewer="tester")
    papermill.execute_notebook(str(NOTEBOOK), str(tmp_path / "run2.ipynb"), parameters=params, progress_bar=False,
                               cwd=str(tmp_path))
    outputs = json.dumps(json.loads((tmp_path / "run2.ipynb").read_text())["cells"])
    assert "Resuming the review" in outputs
    assert merge.Worklist.load(worklist_dir).pair(pid).decision == "rejected"
