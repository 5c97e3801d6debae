"""The registration notebook runs headless with its parameters (papermill), against the test sandbox."""

from __future__ import annotations

from pathlib import Path

import nbformat
import papermill as pm
import pytest

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "01_register_patron.ipynb"


@pytest.mark.slow
def test_the_notebook_runs_with_parameters(sandbox, sandbox_dir, tmp_path):
    out = tmp_path / "out.ipynb"
    pm.execute_notebook(str(NOTEBOOK), str(out), cwd=str(tmp_path), progress_bar=False, kernel_name="python3",
                        parameters={"dry_run": True, "sis_extract": str(sandbox_dir / "sis_extract.zip"),
                                    "merge_requests": str(tmp_path / "merge.csv")})
    nb = nbformat.read(out, as_version=4)
    shown = [o.get("data", {}).get("text/plain", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    # One banner, first on the page: the form's own (it follows the dry-run switch), shown by the notebook
    # above the title; the form itself does not show it a second time.
    first = next(c for c in nb.cells if c.cell_type == "code" and "form.banner" in c.source)
    assert nb.cells.index(first) < next(i for i, c in enumerate(nb.cells) if c.cell_type == "markdown")
    assert not any("build_banner" in c.source for c in nb.cells if c.cell_type == "code")
    banners = [m["state"]["value"] for m in state.values() if "almatools-banner" in m["state"].get("_dom_classes", [])]
    assert banners and all("SANDBOX" in b and "DRY RUN" in b for b in banners)
    assert any("Checkbox(value=True, description='Dry run" in text for text in shown)  # dry_run reached the panels
    assert [kind for kind in ("RegistrationForm", "ConvertPanel", "BulkPanel") if any(kind in t for t in shown)] == [
        "RegistrationForm", "ConvertPanel", "BulkPanel"]
    assert not any(o.get("output_type") == "error" for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.ipynb"]  # building the panels writes nothing
