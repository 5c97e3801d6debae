"""The registration form in a real browser: Debian's Chromium, driven by Playwright, on JupyterLab.

JupyterLab runs from this virtual environment (so its default python3 kernel is this environment's
Python) on a copy of the notebook, with the test sandbox in its environment. The test runs every cell,
sees a cleared required field turn red, registers a patron, and checks through the API that it exists.
Then it registers the same person again under another identifier: the form must show the block and the
Renew action with Register disabled, and after Renew the API shows the new expiration date. No button
label of the form may be cut off. Screenshots go to the test's tmp folder (ALMATOOLS_SCREENSHOTS, if
set, gets a copy).
"""

from __future__ import annotations

import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import date, timedelta
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
WAIT = 60_000  # ms: generous, for a cold JupyterLab and kernel


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_lab(root: Path, home: Path, port: int, token: str) -> subprocess.Popen:
    settings = home / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false",
                                                                          "checkForUpdates": False}))
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"), "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces")}
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}", "--ServerApp.port_retries=0",
           "--ServerApp.allow_root=True", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
           "--LabApp.extension_manager=readonly"]
    # A session of its own, so the server and the kernels it starts are stopped together at the end.
    with (home / "lab.log").open("wb") as log:
        lab = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=2) as reply:
                if reply.status == 200:
                    return lab
        except OSError:
            time.sleep(0.3)
        if lab.poll() is not None:
            break
    stop_lab(lab)
    raise AssertionError("JupyterLab did not start:\n" + (home / "lab.log").read_text(errors="replace")[-3000:])


def stop_lab(lab: subprocess.Popen) -> None:
    if lab.poll() is None:
        os.killpg(lab.pid, signal.SIGTERM)
        try:
            lab.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(lab.pid, signal.SIGKILL)
            lab.wait(timeout=15)


def fresh_community_id(client) -> str:
    rng = random.Random(secrets.randbits(64))
    while True:
        pid = f"CB{rng.randrange(10**6):06d}"
        if client.find_user(pid) is None:
            return pid


@pytest.mark.browser
@pytest.mark.slow
def test_register_a_patron_in_jupyterlab(client, sandbox, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    assert Path(CHROMIUM).exists(), "Debian's chromium is needed (./kit setup installs it)"
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    shutil.copy(ROOT / "notebooks" / "01_register_patron.ipynb", notebooks)
    port, token = free_port(), secrets.token_hex(16)
    pid, second_pid = fresh_community_id(client), fresh_community_id(client)
    soon = date.today() + timedelta(days=30)
    soon_purge = soon + timedelta(days=365)  # the default policy's retention period
    renewed = date.today() + timedelta(days=365)  # group COMMUNITY's default period
    last, first = f"Browser{secrets.token_hex(3)}".replace("0", "o"), "Playwright"
    lab = start_lab(notebooks, tmp_path / "jupyter", port, token)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1600})
                page.goto(f"http://127.0.0.1:{port}/lab/tree/01_register_patron.ipynb?token={token}")
                page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=WAIT)
                expect(page.locator("#jp-main-statusbar")).to_contain_text("Idle", timeout=WAIT)  # the kernel is up
                page.locator(".lm-MenuBar-item", has_text="Run").first.click()
                page.locator(".lm-Menu-item:visible", has_text="Run All Cells").first.click()
                form = page.locator(".almatools-register-form")
                form.wait_for(timeout=WAIT)
                expect(page.locator(".almatools-banner")).to_contain_text("SANDBOX")

                form.locator(".almatools-affiliation select").select_option(label="Community borrower")
                expect(form.locator(".almatools-expiry_date input")).not_to_have_value("")
                # A required field left empty turns red, with what to do beside it.
                form.locator(".almatools-last_name input").fill("x")
                form.locator(".almatools-last_name input").fill("")
                expect(form.locator(".almatools-last_name.almatools-invalid")).to_have_count(1)
                expect(form.locator(".almatools-last_name input")).to_have_css("border-top-color", "rgb(198, 40, 40)")
                expect(form.locator(".almatools-msg-last_name")).to_contain_text("Fill in the last name")
                expect(form.locator(".almatools-register")).to_be_disabled()
                page.screenshot(path=str(tmp_path / "missing_field.png"))

                form.locator(".almatools-first_name input").fill(first)
                form.locator(".almatools-last_name input").fill(last)
                form.locator(".almatools-primary_id input").fill(pid.lower())  # the form upper-cases it
                form.locator(".almatools-birth_date input").fill(date(1988, 3, 9).isoformat())
                form.locator(".almatools-email_address input").fill(f"{pid.lower()}@example.org")
                form.locator(".almatools-password input").fill("Tr1cky-Horse-77")
                form.locator(".almatools-password_confirm input").fill("Tr1cky-Horse-77")
                # A short membership, so that a renewal has something to extend; the purge date box follows.
                form.locator(".almatools-expiry_date input").fill(soon.isoformat())
                form.locator(".almatools-expiry_date input").press("Tab")
                expect(form.locator(".almatools-purge_date input")).to_have_value(soon_purge.isoformat(), timeout=WAIT)
                expect(form.locator(".almatools-last_name.almatools-invalid")).to_have_count(0)
                expect(form.locator(".almatools-register")).to_be_enabled(timeout=WAIT)
                form.locator(".almatools-register").click()
                expect(form.locator(".almatools-result")).to_contain_text("CREATED", timeout=WAIT)
                expect(form.locator(".almatools-status")).to_contain_text("Registered", timeout=WAIT)
                expect(form.locator(".almatools-register")).to_be_disabled()
                form.locator(".almatools-result").scroll_into_view_if_needed()
                page.screenshot(path=str(tmp_path / "registered.png"), full_page=False)

                # The same person again, under another identifier: blocked, with Renew offered.
                form.locator(".almatools-clear").click()
                expect(form.locator(".almatools-last_name input")).to_have_value("", timeout=WAIT)
                form.locator(".almatools-affiliation select").select_option(label="Community borrower")
                form.locator(".almatools-first_name input").fill(first)
                form.locator(".almatools-last_name input").fill(last)
                form.locator(".almatools-primary_id input").fill(second_pid)
                form.locator(".almatools-birth_date input").fill(date(1988, 3, 9).isoformat())
                form.locator(".almatools-email_address input").fill(f"{pid.lower()}@example.org")
                form.locator(".almatools-password input").fill("Tr1cky-Horse-78")
                form.locator(".almatools-password_confirm input").fill("Tr1cky-Horse-78")
                expect(form.locator(".almatools-register")).to_be_enabled(timeout=WAIT)
                form.locator(".almatools-check").click()
                status = form.locator(".almatools-status")
                expect(status).to_contain_text("Blocked", timeout=WAIT)
                expect(status).to_contain_text(pid)
                expect(status).not_to_contain_text("The form is complete")
                expect(form.locator(".almatools-register")).to_be_disabled()
                renew_button = form.locator(".almatools-renew")
                expect(renew_button).to_be_visible()
                expect(form.locator(".almatools-update")).to_be_visible()
                cut = page.evaluate("""() => [...document.querySelectorAll('.almatools-register-form button')]
                    .filter(b => b.offsetParent !== null && b.scrollWidth > b.clientWidth + 1)
                    .map(b => b.textContent.trim())""")
                assert cut == [], f"button labels cut off: {cut}"
                renew_button.scroll_into_view_if_needed()
                page.screenshot(path=str(tmp_path / "blocked_renew_offered.png"), full_page=False)
                renew_button.click()
                expect(form.locator(".almatools-result")).to_contain_text("RENEWED", timeout=WAIT)
                expect(form.locator(".almatools-result")).to_contain_text(renewed.isoformat())
                # The form searched again: the list shows the new date, and only Update is left to offer.
                expect(form.locator(".almatools-existing")).to_contain_text(renewed.isoformat(), timeout=WAIT)
                expect(renew_button).to_be_hidden()
                expect(form.locator(".almatools-register")).to_be_disabled()
                form.locator(".almatools-result").scroll_into_view_if_needed()
                page.screenshot(path=str(tmp_path / "renewed.png"), full_page=False)
            except BaseException:
                page.screenshot(path=str(tmp_path / "failure.png"))
                raise
            finally:
                browser.close()
    finally:
        stop_lab(lab)
        shots = os.environ.get("ALMATOOLS_SCREENSHOTS")
        if shots:
            Path(shots).mkdir(parents=True, exist_ok=True)
            for png in tmp_path.glob("*.png"):
                shutil.copy(png, Path(shots) / png.name)
    stored = client.get_user(pid)
    assert (stored["first_name"], stored["last_name"]) == (first, last)
    assert stored["user_group"]["value"] == "COMMUNITY" and stored["account_type"]["value"] == "INTERNAL"
    assert stored["expiry_date"] == renewed.isoformat() + "Z"  # the Renew click went through the API
    assert stored["purge_date"] == (renewed + timedelta(days=365)).isoformat() + "Z"
    assert client.find_user(second_pid) is None  # and no second account
    assert lab.poll() is not None
