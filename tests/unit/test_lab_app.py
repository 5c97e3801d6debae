"""``almatools lab`` / ``app`` without starting a server: the workspace, the command lines, the links,
and the one search box (over the test sandbox)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from almatools import app
from almatools.cli import build_parser
from almatools.config import CHECKOUT, served_root, ui_mode, workspace
from almatools.errors import ConfigError
from almatools.ui import links
from almatools.ui.search import build_user_search, search_everything

ROOT = Path(__file__).resolve().parents[2]


def kit_notebooks(tmp_path: Path) -> Path:
    folder = tmp_path / "kit-notebooks"
    folder.mkdir()
    for name in ("00_a.ipynb", "01_b.ipynb"):
        (folder / name).write_text(json.dumps({"cells": [], "v": 1}), encoding="utf-8")
    return folder


def test_the_workspace_gets_copies_that_follow_the_kit_unless_edited(tmp_path):
    source, work = kit_notebooks(tmp_path), tmp_path / "work"
    first = app.prepare_workspace(work, source)
    assert [p.name for p in first.notebooks] == ["00_a.ipynb", "01_b.ipynb"] and first.copied == ("00_a.ipynb",
                                                                                                 "01_b.ipynb")
    assert not (work / "00_a.ipynb").is_symlink()  # a copy: saving in Lab never touches the kit's notebooks
    again = app.prepare_workspace(work, source)
    assert again.copied == () and again.kept == ()
    # The kit changes both notebooks (a git pull); the librarian had edited 01 in the workspace.
    (work / "01_b.ipynb").write_text('{"mine": true}', encoding="utf-8")
    for name in ("00_a.ipynb", "01_b.ipynb"):
        (source / name).write_text(json.dumps({"cells": [], "v": 2}), encoding="utf-8")
    third = app.prepare_workspace(work, source)
    assert third.copied == ("00_a.ipynb",) and third.kept == ("01_b.ipynb",)
    assert json.loads((work / "00_a.ipynb").read_text())["v"] == 2
    assert json.loads((work / "01_b.ipynb").read_text()) == {"mine": True}


def test_a_link_left_by_an_earlier_kit_becomes_a_copy(tmp_path):
    source, work = kit_notebooks(tmp_path), tmp_path / "work"
    work.mkdir()
    (work / "00_a.ipynb").symlink_to(source / "00_a.ipynb")
    app.prepare_workspace(work, source)
    assert not (work / "00_a.ipynb").is_symlink() and (work / "00_a.ipynb").read_bytes() == \
        (source / "00_a.ipynb").read_bytes()


def test_no_notebooks_or_an_unwritable_workspace_say_what_to_do(tmp_path):
    with pytest.raises(ConfigError, match="No notebooks in .*--notebooks DIR"):
        app.prepare_workspace(tmp_path / "work", tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="--workspace DIR"):
        app.prepare_workspace(blocker / "work", kit_notebooks(tmp_path))


def test_lab_command_line(tmp_path):
    plain = app.lab_command(tmp_path, port=9001, allow_root=False, open_browser=False)
    assert f"--ServerApp.root_dir={tmp_path}" in plain and "--port=9001" in plain and "--no-browser" in plain
    assert "--allow-root" not in plain and "--ServerApp.ip=127.0.0.1" in plain
    assert f"--LabApp.app_settings_dir={app.LAB_SETTINGS}" in plain
    root = app.lab_command(tmp_path, allow_root=True, extra=["--allow-root", "--port=7000"])
    assert root.count("--allow-root") == 1 and "--port=7000" in root and f"--port={app.LAB_PORT}" not in root


def test_the_shipped_lab_settings_turn_the_news_off():
    overrides = json.loads((app.LAB_SETTINGS / "overrides.json").read_text(encoding="utf-8"))
    assert overrides["@jupyterlab/apputils-extension:notification"]["fetchNews"] == "false"


def test_app_command_line_shows_no_code_and_serves_only_outputs(tmp_path):
    command = app.app_command(tmp_path, port=9002, open_browser=False)
    assert command[1:4] == ["-m", "voila", str(tmp_path)] and "--port=9002" in command
    assert "--VoilaConfiguration.show_tracebacks=False" in command and "--no-browser" in command
    allow = [c.split("=", 1)[1] for c in command if c.startswith("--VoilaConfiguration.file_allowlist=")]
    deny = [c.split("=", 1)[1] for c in command if c.startswith("--VoilaConfiguration.file_denylist=")]
    import re

    assert any(re.fullmatch(a, "reports/2026-01-01T0000/report.html") for a in allow)
    assert any(re.fullmatch(d, "03_prepare_merge_list.ipynb") for d in deny)
    assert any(re.fullmatch(d, ".almatools-notebooks.json") for d in deny)


def test_the_commands_take_ports_and_allow_root():
    parser = build_parser()
    lab = parser.parse_args(["lab", "--allow-root"])
    assert lab.allow_root and lab.port == app.LAB_PORT == 8888 and lab.sandbox_port == app.SANDBOX_PORT == 8990
    assert parser.parse_args(["lab", "--port", "9999"]).port == 9999
    served = parser.parse_args(["app"])
    assert served.port == app.APP_PORT == 8866 and served.func.__name__ == "cmd_app"
    extra = parser.parse_args(["lab", "--", "--ServerApp.token=x"])
    assert extra.jupyter_args[-1] == "--ServerApp.token=x"


def test_workspace_setting():
    assert workspace({"ALMATOOLS_WORKSPACE": "/srv/lib/work"}) == Path("/srv/lib/work")
    if CHECKOUT is not None:
        assert workspace({}) == ROOT / "work"
    assert ui_mode({"ALMATOOLS_UI": "app"}) == "app" and ui_mode({"ALMATOOLS_UI": "x"}) is None
    assert served_root({}) is None


@pytest.mark.parametrize("mode, expected", [("lab", "/lab/tree/reports/r%201/report.html"),
                                            ("app", "/voila/files/reports/r%201/report.html")])
def test_paths_become_links_that_open_where_the_librarian_works(monkeypatch, tmp_path, mode, expected):
    report = tmp_path / "reports" / "r 1" / "report.html"
    report.parent.mkdir(parents=True)
    report.write_text("<html></html>")
    monkeypatch.setenv("ALMATOOLS_UI", mode)
    monkeypatch.setenv("ALMATOOLS_SERVER_ROOT", str(tmp_path))
    assert links.file_href(report) == expected
    html = links.link_html(report)
    assert f'href="{expected}"' in html and 'target="_blank"' in html and "report.html</a>" in html
    assert links.file_href(Path(os.sep) / "elsewhere" / "x.csv") is None  # outside the served folder
    assert links.link_html("/elsewhere/x.csv") == "<code>/elsewhere/x.csv</code>"


def test_without_a_server_paths_stay_text(monkeypatch, tmp_path):
    monkeypatch.delenv("ALMATOOLS_UI", raising=False)
    assert links.file_href(tmp_path / "a.csv") is None
    assert str(tmp_path / "a.csv") in links.show_path(tmp_path / "a.csv", "File: ").data


def test_one_box_finds_identifiers_names_and_emails(client):
    someone = next(u for u in client.search_users(max_records=50, order_by="last_name")
                   if u.get("first_name") and u.get("last_name") and u["last_name"].isalpha())
    full = client.get_user(someone["primary_id"])
    by_id = search_everything(client, someone["primary_id"].lower())
    assert by_id[0]["primary_id"] == someone["primary_id"] and "identifier" in by_id[0]["found_by"]
    by_name = search_everything(client, f"{full['last_name']}, {full['first_name']}")
    assert someone["primary_id"] in {u["primary_id"] for u in by_name}
    assert {u["found_by"] for u in by_name} == {"name"}
    email = next((e["email_address"] for e in full.get("contact_info", {}).get("email", [])), None)
    if email:
        by_email = search_everything(client, email)
        assert someone["primary_id"] in {u["primary_id"] for u in by_email}
    assert search_everything(client, "Zzyzx-nobody-Qq") == []
    assert search_everything(client, ", ") == []  # nothing to search by: no call Alma would refuse


def test_the_search_box_searches_when_its_value_arrives(client):
    """Enter (or leaving the box) sends the value with continuous_update=False: that starts the search."""
    panel = build_user_search(client)
    assert panel.text.continuous_update is False
    someone = next(iter(client.search_users(max_records=1)))
    panel.text.value = someone["primary_id"]  # what the browser sends on Enter
    assert "found" in panel.result.value and someone["primary_id"] in panel.result.value
    panel.text.value = ""
    panel.button.click()
    assert "Type an identifier" in panel.result.value
