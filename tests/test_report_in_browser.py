"""report.html as a person sees it: opened in headless Chromium (driven by Selenium), it logs no console
error, lists every cause in its table, and every picture in it loads. Skips where no browser is installed,
except where ``CONVT_REQUIRE_BROWSER`` is set (CI installs one)."""

from __future__ import annotations

import os
import shutil

import pytest

from convt_conformance.reports.causes import group
from convt_conformance.reports.render import html_document

from .test_reports import record


def _driver():
    browser, driver = shutil.which("chromium") or shutil.which("chromium-browser"), shutil.which("chromedriver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        browser = None
    if not (browser and driver):
        if os.environ.get("CONVT_REQUIRE_BROWSER"):
            pytest.fail("CONVT_REQUIRE_BROWSER is set but chromium, chromedriver or selenium is missing")
        pytest.skip("no headless Chromium (Debian: apt-get install chromium chromium-driver; pip install selenium)")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,2000"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver), options=options)


def _report() -> dict:
    """Three causes: wrong values on a 5x6 output slice (a heatmap), a tiny one (a table of numbers), and a
    crash with the worker's last output; plus a string from an implementation that must stay text."""
    problem = {"input_shape": [1, 1, 5, 6], "weight_shape": [1, 1, 2, 2], "value_kind": "int", "layout": "contiguous"}
    big = {"values": [[float(r * 6 + c) for c in range(6)] for r in range(5)], "marked": [4, 5], "title":
           "error / allowance", "axes": ["axis 2", "axis 3"], "origin": [0, 0], "slice": [0, 0]}
    tiny = {"values": [[0.0, 3.5]], "marked": [0, 1], "title": "error / allowance"}
    discrepancies = [
        record(impl="k", check="exact", evidence="integer", summary="29 of 30 elements differ from the exact integer "
               "answer", problem=problem, picture=big, descriptor="2d n1 c1->1 L5x6", details={"got": 0.1234567891}),
        record(impl="k", check="bound", evidence="rounding", summary="1 of 2 elements exceed the rounding-error "
               "allowance (worst 3.5x)", problem={**problem, "input_shape": [1, 1, 1, 2]}, picture=tiny),
        record(impl="<script>alert(1)</script>", check="crash", facets={"exit": "SIGSEGV"}, summary="killed by "
               "SIGSEGV", details={"worker output": "fatal: index 2147483648 out of range"}, problem=problem),
    ]
    return {"discrepancies": discrepancies, "causes": group(discrepancies),
            "summary": {"environment": {"torch": "2.x", "cpu": "test"}}}


def test_report_html_opens_in_a_browser_without_errors_with_every_cause_and_picture(tmp_path):
    report = _report()
    page = tmp_path / "report.html"
    page.write_text(html_document(report), encoding="utf-8")
    browser = _driver()
    try:
        browser.get(page.as_uri())
        errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
        rows = browser.execute_script("return document.querySelectorAll('#causes tr.cause').length")
        images = browser.execute_script("return Array.from(document.images).map(i => i.complete && i.naturalWidth)")
        sections = browser.execute_script("return document.querySelectorAll('section').length")
        alerts = browser.execute_script("return document.body.innerText.includes('<script>alert(1)</script>')")
        browser.save_screenshot(str(tmp_path / "report.png"))
    finally:
        browser.quit()
    assert errors == [], errors
    assert rows == sections == len(report["causes"]) == 3
    assert len(images) == 1 and all(width and width > 100 for width in images), images  # the heatmap, loaded
    assert alerts  # shown as text, never run
