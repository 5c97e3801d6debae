"""The report in a real browser: Debian's Chromium, driven by Playwright, opens report.html from disk.

The page must render every section, draw its charts, and ask for nothing beyond its own file (it is
mailed and filed, and opened where there is no network).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _report_data import read_csv, runs

from almatools.reports import SECTIONS

CHROMIUM = "/usr/bin/chromium"  # as tests/browser: Debian's Chromium, no browser download
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


@pytest.mark.browser
def test_chromium_renders_every_section_of_the_report(history_root, tmp_path):
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "Debian's chromium is needed (./kit setup installs it)"
    run = runs(history_root)[-1]
    findings = read_csv(run / "findings.csv")
    shot = tmp_path / "report.png"
    requests: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.on("request", lambda request: requests.append(request.url))
            page.goto((run / "report.html").as_uri(), wait_until="load")
            headings = [h.strip() for h in page.locator("section > h2").all_inner_texts()]
            assert headings == [heading for _, heading in SECTIONS]
            for section_id, _ in SECTIONS:
                assert page.locator(f"section#{section_id}").is_visible()
            charts = page.locator("svg.chart")
            assert charts.count() >= 4  # by rule, severity, group, and the trend
            box = charts.first.bounding_box()
            assert box is not None and box["width"] > 300 and box["height"] > 50
            assert page.locator("#table-top tr:has(td)").count() == min(50, len(findings))
            assert page.locator('[data-count="findings"]').inner_text().replace(",", "") == str(len(findings))
            page.screenshot(path=str(shot), full_page=True)
            height = page.evaluate("document.documentElement.scrollHeight")
        finally:
            browser.close()
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000
    assert height > 3000  # the whole report, not an empty page
    assert requests == [(run / "report.html").as_uri()]  # nothing but the file itself


@pytest.mark.browser
def test_the_report_reads_in_a_narrow_window_without_sideways_scrolling(history_root, tmp_path):
    """At 800 px (a laptop screen split in two) the page itself never scrolls sideways: the last column of a
    table was cut off at the window's edge. A table too wide scrolls inside its own box instead."""
    from playwright.sync_api import sync_playwright

    run = runs(history_root)[-1]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            for width in (1280, 800):
                page = browser.new_page(viewport={"width": width, "height": 900})
                page.goto((run / "report.html").as_uri(), wait_until="load")
                assert page.evaluate("document.documentElement.scrollWidth") <= width, f"sideways at {width} px"
                outside = page.evaluate("""() => [...document.querySelectorAll('section > table, section > svg')]
                    .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1).map(e => e.id || e.tagName)""")
                assert outside == [], f"cut off at {width} px: {outside}"
                page.screenshot(path=str(tmp_path / f"report-{width}.png"))
                page.close()
        finally:
            browser.close()
