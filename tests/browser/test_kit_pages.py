"""What a librarian sees, in Debian's Chromium: every notebook page in JupyterLab (``./kit lab``) and in
app mode (``./kit app``, Voila), both started as the current user (root in CI) with no extra flag.

Each page is run, screenshotted (the PNGs are kept in the test's temporary folder, and copied to
``$ALMATOOLS_SCREENSHOTS`` when that is set) and checked: the banner comes first, no error output, no
Jupyter news pop-up, the page's key widgets are visible, the findings table has at most one page of rows.
In app mode the test also registers a patron through the form (and finds it through the API) and
approves a merge pair (and finds the decision in the worklist's journal).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import time
from datetime import date
from pathlib import Path

import pytest
from kit_servers import ARGS, CHROMIUM, NOTEBOOKS, KitServer, start_kit

from almatools import merge
from almatools.client import AlmaClient
from almatools.ui.quality import PAGE_SIZE

pytestmark = [pytest.mark.browser, pytest.mark.slow]
WAIT = 120_000  # ms: a cold kernel, and the linkage of notebooks 02 to 04
# The widgets that make each page what it is (CSS selectors), beyond the banner.
KEY_WIDGETS = {
    "00_getting_started.ipynb": [".almatools-search-box input", ".almatools-search-button"],
    "01_register_patron.ipynb": [".almatools-register-form", ".almatools-register"],
    "02_find_duplicates_and_stale.ipynb": [".almatools-findings-panel", ".almatools-findings table",
                                           ".almatools-page-next"],
    "03_prepare_merge_list.ipynb": ["button:has-text('Approve')", ".almatools-write-exports",
                                    "button:has-text('Verify in Alma')"],
    "04_data_quality_report.ipynb": ["a.almatools-link:has-text('report.html')"],
}
# The last thing each page shows once every cell has run.
DONE = {name: widgets[-1] for name, widgets in KEY_WIDGETS.items()}


def shots_dir(tmp: Path) -> Path:
    folder = tmp / "screenshots"
    folder.mkdir(exist_ok=True)
    return folder


def keep(path: Path) -> None:
    target = os.environ.get("ALMATOOLS_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / path.name)


def check_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000, f"{path.name} is not a real screenshot"
    keep(path)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "Debian's chromium is needed (./kit setup installs it)"
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    server = start_kit("lab", tmp_path_factory.mktemp("kit-lab"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    server = start_kit("app", tmp_path_factory.mktemp("kit-app"))
    yield server
    server.stop()


def said_root(server: KitServer) -> None:
    """Started with no root flag: as root, Lab got --allow-root from the kit, and said so."""
    if os.geteuid() == 0 and server.mode == "lab":
        assert "Running as root: JupyterLab is started with --allow-root." in server.output()
    assert "Running as root is not recommended" not in server.output()


# -- JupyterLab ------------------------------------------------------------------------------------

def test_kit_lab_comes_up_as_this_user_on_the_workspace(lab):
    said_root(lab)
    assert f"Workspace: {lab.workspace}" in lab.output()
    assert sorted(p.name for p in lab.workspace.glob("*.ipynb")) == NOTEBOOKS


def run_in_lab(page, lab: KitServer, name: str) -> None:
    from playwright.sync_api import expect

    page.goto(f"{lab.url}/lab/tree/{name}?token={lab.token}&reset")  # reset: only this notebook open
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=WAIT)
    expect(page.locator("#jp-main-statusbar")).to_contain_text("Idle", timeout=WAIT)
    # Run > Run All Cells, through Lab's command registry (the menu can be clicked before it is wired up).
    page.wait_for_function("window.jupyterapp && window.jupyterapp.shell.currentWidget "
                           "&& window.jupyterapp.shell.currentWidget.context "
                           "&& window.jupyterapp.shell.currentWidget.sessionContext.session", timeout=WAIT)
    page.locator(".jp-Notebook .jp-Cell").first.click()  # the notebook has the focus: the command acts on it
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
    # JupyterLab renders cells out of view lazily: wait until the last widget exists, then look at it.
    done = page.locator(DONE[name]).first
    done.wait_for(state="attached", timeout=WAIT)
    expect(page.locator(".jp-InputPrompt", has_text="[*]")).to_have_count(0, timeout=WAIT)
    done.scroll_into_view_if_needed()
    expect(done).to_be_visible(timeout=WAIT)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_each_page_in_lab(browser, lab, name, tmp_path):
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    try:
        run_in_lab(page, lab, name)
        outputs = page.locator(".jp-OutputArea-output")
        assert outputs.count() > 0
        expect(outputs.first).to_contain_text("SANDBOX")  # the banner is the first thing the notebook shows
        assert page.get_by_text(re.compile(r"^SANDBOX: http")).count() == 1, "one banner a notebook"
        for selector in KEY_WIDGETS[name]:
            page.locator(selector).first.scroll_into_view_if_needed()
            expect(page.locator(selector).first).to_be_visible()
        errors = page.locator("[data-mime-type='application/vnd.jupyter.stderr'], "
                              "[data-mime-type='application/vnd.jupyter.error']")
        assert errors.count() == 0, errors.all_inner_texts()[:3]
        assert cut_labels(page) == [], "button labels must fit"
        if name.startswith("02"):
            rows = page.locator(".almatools-findings table tbody tr")
            assert 0 < rows.count() <= PAGE_SIZE
        page.wait_for_timeout(1500)  # the news question, when it comes, comes shortly after start
        assert page.get_by_text(re.compile("Jupyter news", re.I)).count() == 0
        assert page.locator(".jp-Notification-Toast, .Toastify__toast").count() == 0
        # the kit's settings draw every cell (no lazy "windowing"): what is scrolled to is there at once
        assert page.evaluate("window.jupyterapp.shell.currentWidget.content.notebookConfig.windowingMode") == "none"
        page.locator(DONE[name]).first.scroll_into_view_if_needed()
        shot = shots_dir(tmp_path) / f"lab-{name.removesuffix('.ipynb')}-widgets.png"
        page.screenshot(path=str(shot))
        check_png(shot)
        page.locator(".jp-Notebook .jp-Cell").first.scroll_into_view_if_needed()
        shot = shots_dir(tmp_path) / f"lab-{name.removesuffix('.ipynb')}.png"
        page.screenshot(path=str(shot))
        check_png(shot)
    except BaseException:
        page.screenshot(path=str(shots_dir(tmp_path) / f"failed-lab-{name.removesuffix('.ipynb')}.png"))
        keep(shots_dir(tmp_path) / f"failed-lab-{name.removesuffix('.ipynb')}.png")
        raise
    finally:
        page.close()


def test_lab_links_open_outputs_of_the_workspace(browser, lab, tmp_path):
    """Notebook 04's report link opens report.html from the workspace in Lab."""
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        run_in_lab(page, lab, "04_data_quality_report.ipynb")
        link = page.locator("a.almatools-link", has_text="report.html").first
        href = link.get_attribute("href")
        assert href.startswith("/lab/tree/reports/") and href.endswith("/report.html")
        assert (lab.workspace / href.removeprefix("/lab/tree/")).is_file()
        with page.context.expect_page() as opened:
            link.click()
        tab = opened.value
        tab.goto(f"{lab.url}{href}?token={lab.token}")
        expect(tab.locator(".jp-MainAreaWidget").last).to_be_visible(timeout=WAIT)
        expect(tab.locator(".lm-TabBar-tab.jp-mod-current[data-type='document-title']")).to_contain_text(
            "report.html", timeout=WAIT)
        tab.close()
    finally:
        page.close()


# -- app mode (Voila) ------------------------------------------------------------------------------

def test_kit_app_comes_up_with_a_landing_page(browser, app, tmp_path):
    said_root(app)
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    try:
        page.goto(app.url + "/")
        for name in NOTEBOOKS:
            page.get_by_text(name).first.wait_for(timeout=WAIT)
        tasks = page.locator("a.almatools-task")
        assert tasks.count() == len(NOTEBOOKS)  # one page per task
        assert page.title() == "almatools: patron data tasks"
        for title in ("Getting started", "Register patrons", "Find duplicates and stale records",
                      "Prepare a merge list", "Data-quality report"):
            assert page.get_by_text(title, exact=True).is_visible()
        assert tasks.nth(1).get_attribute("href").endswith("/voila/render/01_register_patron.ipynb?")
        shot = shots_dir(tmp_path) / "app-landing.png"
        page.screenshot(path=str(shot), full_page=True)
        check_png(shot)
    finally:
        page.close()


def page_height(page) -> int:
    """The height of the whole page: Voila's lab template scrolls in an inner box, not the document."""
    return int(page.evaluate("Math.max(document.documentElement.scrollHeight, "
                             "...Array.from(document.querySelectorAll('*')).map(e => e.scrollHeight))"))


def whole_page_shot(page, path: Path) -> None:
    """A screenshot of the whole page (the viewport made as tall as the page, up to 12,000 px)."""
    size = page.viewport_size
    page.set_viewport_size({"width": size["width"], "height": min(page_height(page), 12_000)})
    page.wait_for_timeout(300)
    page.screenshot(path=str(path))
    page.set_viewport_size(size)


def cut_labels(page) -> list[str]:
    """The visible buttons whose label does not fit (the browser cuts it with an ellipsis)."""
    return page.evaluate("""Array.from(document.querySelectorAll('.widget-button'))
        .filter(b => b.offsetParent !== null && b.scrollWidth > b.clientWidth + 1)
        .map(b => b.innerText)""")


def open_in_app(page, app: KitServer, name: str) -> None:
    page.goto(f"{app.url}/voila/render/{name}", timeout=WAIT)
    page.locator(DONE[name]).first.wait_for(state="visible", timeout=WAIT)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_each_page_in_app_mode(browser, app, name, tmp_path):
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    try:
        open_in_app(page, app, name)
        body = page.locator("body").inner_text()
        assert "Traceback" not in body and "There was an error when executing" not in body
        assert page.locator(".jp-CodeCell .jp-InputArea, .cm-editor").count() == 0  # no code cells
        assert "import almatools" not in body and "# Parameters" not in body
        errors = page.locator("[data-mime-type='application/vnd.jupyter.stderr'], "
                              "[data-mime-type='application/vnd.jupyter.error']")
        assert errors.count() == 0, errors.all_inner_texts()[:3]
        banners = page.get_by_text(re.compile(r"^SANDBOX: http"))
        assert banners.count() == 1, "one banner a page"
        banner = banners.first
        expect(banner).to_be_visible()
        top = [box["y"] for box in (el.bounding_box() for el in page.locator(
            ".jp-RenderedHTMLCommon h1, .jp-RenderedHTMLCommon h2, .widget-button, input").all()
            if el.is_visible()) if box]
        assert banner.bounding_box()["y"] < min(top), "the banner must be the first thing on the page"
        for selector in KEY_WIDGETS[name]:
            expect(page.locator(selector).first).to_be_visible()
        assert cut_labels(page) == [], "button labels must fit"
        if name.startswith("02"):
            rows = page.locator(".almatools-findings table tbody tr")
            assert 0 < rows.count() <= PAGE_SIZE
            assert "SIS extract: none" not in body  # the sandbox's own extract is found
            height = page_height(page)
            assert 1000 < height < 7000, f"the page is a wall ({height} px)"
        shot = shots_dir(tmp_path) / f"app-{name.removesuffix('.ipynb')}.png"
        whole_page_shot(page, shot)
        check_png(shot)
    except BaseException:
        page.screenshot(path=str(shots_dir(tmp_path) / f"failed-app-{name.removesuffix('.ipynb')}.png"), full_page=True)
        keep(shots_dir(tmp_path) / f"failed-app-{name.removesuffix('.ipynb')}.png")
        raise
    finally:
        page.close()


def test_app_search_finds_by_name_on_enter(browser, app):
    from playwright.sync_api import expect

    with AlmaClient(api_key=app.api_key, base_url=app.sandbox_url()) as alma:
        someone = next(iter(alma.search_users(max_records=1, last_name="a*")), None) or \
            next(iter(alma.search_users(max_records=1)))
    last = someone["last_name"]
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        open_in_app(page, app, "00_getting_started.ipynb")
        box = page.locator(".almatools-search-box input")
        box.fill(last)
        box.press("Enter")
        result = page.locator(".almatools-search-result")
        expect(result).to_contain_text("found", timeout=WAIT)
        expect(result).to_contain_text(last)
        expect(result.locator("td", has_text="name").first).to_be_visible()  # found by: name
    finally:
        page.close()


def test_app_findings_table_pages(browser, app):
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        open_in_app(page, app, "02_find_duplicates_and_stale.ipynb")
        expect(page.locator(".almatools-findings th", has_text="What to do")).to_be_visible()
        first = page.locator(".almatools-findings tbody").inner_text()
        page.locator(".almatools-page-next").click()
        expect(page.get_by_text(re.compile(r"page 2 of \d+"))).to_be_visible(timeout=WAIT)
        assert page.locator(".almatools-findings tbody").inner_text() != first
    finally:
        page.close()


def test_app_registers_a_patron(browser, app, tmp_path):
    from playwright.sync_api import expect

    pid = f"CB{secrets.randbelow(10**6):06d}"
    last, first = f"Voila{secrets.token_hex(3)}".replace("0", "o"), "Appmode"
    page = browser.new_page(viewport={"width": 1280, "height": 1400})
    try:
        open_in_app(page, app, "01_register_patron.ipynb")
        form = page.locator(".almatools-register-form")
        form.locator(".almatools-affiliation select").select_option(label="Community borrower")
        expect(form.locator(".almatools-expiry_date input")).not_to_have_value("")
        form.locator(".almatools-first_name input").fill(first)
        form.locator(".almatools-last_name input").fill(last)
        form.locator(".almatools-primary_id input").fill(pid)
        form.locator(".almatools-birth_date input").fill(date(1979, 11, 2).isoformat())
        form.locator(".almatools-email_address input").fill(f"{pid.lower()}@example.org")
        form.locator(".almatools-password input").fill("Tr1cky-Horse-77")
        form.locator(".almatools-password_confirm input").fill("Tr1cky-Horse-77")
        expect(form.locator(".almatools-register")).to_be_enabled(timeout=WAIT)
        form.locator(".almatools-register").click()
        expect(form.locator(".almatools-result")).to_contain_text("CREATED", timeout=WAIT)
        shot = shots_dir(tmp_path) / "app-registered.png"
        whole_page_shot(page, shot)
        check_png(shot)
    finally:
        page.close()
    with AlmaClient(api_key=app.api_key, base_url=app.sandbox_url()) as alma:
        stored = alma.get_user(pid)
    assert (stored["first_name"], stored["last_name"]) == (first, last)
    assert stored["user_group"]["value"] == "COMMUNITY"


def test_app_merge_review_approves_a_pair(browser, app, tmp_path):
    from playwright.sync_api import expect

    folder = app.workspace / "merge_worklist"
    page = browser.new_page(viewport={"width": 1280, "height": 1400})
    try:
        open_in_app(page, app, "03_prepare_merge_list.ipynb")
        worklist = merge.Worklist.load(folder)
        candidates = [p for p in worklist.pairs() if p.approvable and p.decision == "proposed"]
        assert candidates, "the sandbox's planted duplicates should give an approvable pair"
        pair = candidates[0]
        command = page.locator("input[placeholder^='a approve']")
        command.fill(f"g {pair.pair_id}")
        command.press("Enter")
        expect(page.locator("h3", has_text=f": {pair.pair_id}")).to_be_visible(timeout=WAIT)
        page.locator("button:has-text('Approve')").click()
        expect(page.get_by_text(f"{pair.pair_id}: approved")).to_be_visible(timeout=WAIT)
        deadline = time.monotonic() + 30
        while merge.Worklist.load(folder).pair(pair.pair_id).decision != "approved" and time.monotonic() < deadline:
            time.sleep(0.3)
        page.locator(".almatools-write-exports").click()
        expect(page.locator("a.almatools-link", has_text="merge_list.csv")).to_be_visible(timeout=WAIT)
        shot = shots_dir(tmp_path) / "app-merge-approved.png"
        whole_page_shot(page, shot)
        check_png(shot)
    finally:
        page.close()
    saved = merge.Worklist.load(folder).pair(pair.pair_id)
    assert saved.decision == "approved" and saved.reviewer
    exported = (folder / "merge_list.csv").read_text(encoding="utf-8")
    assert pair.from_id in exported and pair.to_id in exported
