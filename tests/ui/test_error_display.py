"""The kit's errors on a notebook page: a message with what to do, never a traceback (nor, in app mode, Voila's
"There was an error when executing cell [4]. Please run Voila with --show_tracebacks=True").

A real kernel runs a small notebook against a sandbox address where nothing answers any more (a sandbox
stopped mid-session): the cell that calls Alma shows the message and no error output, which is all Voila
replaces; an error that is not the kit's (a bug) keeps its traceback.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]


def dead_url() -> str:
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/almaws/v1"


@pytest.mark.slow
def test_a_stopped_sandbox_is_a_message_with_what_to_do_not_a_traceback(tmp_path):
    key = "k-" + "7" * 22
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "from almatools.client import AlmaClient\n"
            "from almatools.ui import show_errors_plainly\n"
            f"alma = AlmaClient(api_key={key!r}, base_url={dead_url()!r}, max_retries=0)\n"
            "show_errors_plainly(alma)"),
        nbformat.v4.new_code_cell("alma.refresh_remaining()"),
        nbformat.v4.new_code_cell("raise ValueError('a bug of the kit keeps its traceback')"),
    ]
    NotebookClient(nb, timeout=60, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    setup, call, bug = (c.outputs for c in nb.cells)
    assert not any(o.output_type == "error" for o in setup)
    assert not any(o.output_type == "error" for o in call), call  # no "error" output for Voila to replace
    shown = "".join(o.data["text/html"] for o in call if o.output_type == "display_data")
    assert "The sandbox at http://127.0.0.1:" in shown and "does not answer" in shown
    assert "./kit app" in shown and "run the notebook again" in shown
    assert "Traceback" not in json.dumps(call), call
    assert key not in json.dumps([c.outputs for c in nb.cells])  # the key is in the code only, never shown
    assert [o.output_type for o in bug] == ["error"] and bug[0].ename == "ValueError"


def test_every_notebook_shows_the_kits_errors_plainly_from_its_first_cell_on():
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        code = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
        assert "show_errors_plainly(" in code[1].source, f"{path.name}: call it in the cell that connects"


def test_the_form_and_a_failed_step_say_the_sandbox_stopped_and_what_to_do(tmp_path):
    """The form used to say "Check the network" when it was the local sandbox that had stopped, and a report
    step failing for the same reason said neither what happened nor what to do."""
    from almatools.client import AlmaClient
    from almatools.errors import AlmaConnectionError, ReportError
    from almatools.policy import load_policy
    from almatools.ui import build_bulk_panel, build_registration_form
    from almatools.ui.errors import error_message

    with AlmaClient(api_key="k-" + "5" * 22, base_url=dead_url(), max_retries=0) as alma:
        form = build_registration_form(alma, load_policy())
        form.fields["affiliation"].value = "community"
        for name, value in (("first_name", "Ada"), ("last_name", "Lovelace"), ("primary_id", "CB100001"),
                            ("email_address", "ada@example.org")):
            form.fields[name].value = value
        form.check_button.click()
        assert "does not answer: it has been stopped" in form.existing.value
        assert "then click again" in form.existing.value and "Check the network" not in form.existing.value
        source = tmp_path / "rows.csv"
        source.write_text("affiliation,first_name,last_name,primary_id,email_address,password\n"
                          "community,Ada,Lovelace,CB100001,ada@example.org,Tr1cky-Horse-77\n", encoding="utf-8")
        panel = build_bulk_panel(alma, load_policy(), today=None)
        panel.path.value = str(source)
        panel.run_button.click()
        assert "does not answer" in panel.summary.value and "click Run again" in panel.summary.value
        try:
            try:
                alma.get_user("CB100001")
            except AlmaConnectionError as exc:
                raise ReportError("finding the sandbox's data failed") from exc
        except ReportError as step:
            said = error_message(step, alma, then="then run it again")
        assert said.startswith("The sandbox at http://127.0.0.1:") and "then run it again" in said
        assert said.endswith("(It stopped at: finding the sandbox's data failed.)")
