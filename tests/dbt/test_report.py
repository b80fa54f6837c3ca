"""`clickhaul report` on the built marts, opened in a real headless Chromium (Debian's package): no console errors,
no failed requests (the page is self-contained), and every chart has drawn, visible marks."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pipelines.report import ReportData, bar_chart, line_chart
from tests.support import required, run_cli
from tests.support.dbt import VENDOR_NAMES, require_dbt

require_dbt()

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium_path() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    required("chromium is not installed: apt-get install -y chromium (see .ci/services.sh)")
    raise AssertionError("unreachable")


@pytest.fixture(scope="module")
def report(built: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "report.html"
    result = run_cli("report", "--database", str(built), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"ok: wrote {out}")
    return out


def test_report_is_self_contained(report: Path) -> None:
    text = report.read_text()
    assert "<script" not in text and "http://" not in text and "https://" not in text
    for chart in ("traffic", "pages", "channels"):
        assert f'data-chart="{chart}"' in text


def test_report_renders_in_headless_chromium(report: Path, tmp_path: Path) -> None:
    executable = chromium_path()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        required("playwright (Python) is not installed: pip install playwright (no browser download needed)")
    messages: list[str] = []
    failed: list[str] = []
    with sync_playwright() as playwright:
        # A fresh profile directory per run (Playwright passes it as --user-data-dir).
        browser = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=executable,
            args=CHROMIUM_FLAGS[1:],
            headless=True,
            viewport={"width": 1000, "height": 1400},
        )
        try:
            page = browser.new_page()
            page.on("console", lambda message: messages.append(f"{message.type}: {message.text}"))
            page.on("pageerror", lambda error: messages.append(f"pageerror: {error}"))
            page.on("requestfailed", lambda request: failed.append(request.url))
            page.goto(report.as_uri(), wait_until="load")
            charts = page.eval_on_selector_all(
                "figure.chart",
                """figures => figures.map(figure => ({
                    name: figure.dataset.chart,
                    vendor: figure.dataset.vendor || '',
                    declared: Number(figure.dataset.marks),
                    marks: [...figure.querySelectorAll('polyline.series, circle.point, rect.bar')]
                        .filter(mark => { const box = mark.getBoundingClientRect();
                                          return box.width > 0 && box.height > 0; }).length,
                    svg: figure.querySelector('svg') ? figure.querySelector('svg').getBoundingClientRect().height : 0,
                }))""",
            )
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        finally:
            browser.close()
    errors = [message for message in messages if message.startswith(("error", "pageerror"))]
    assert not errors, errors
    assert not failed, failed
    assert {chart["name"] for chart in charts} == {"traffic", "pages", "channels"}
    for chart in charts:
        assert chart["declared"] > 0 and chart["marks"] > 0 and chart["svg"] > 50, chart
    # one traffic panel per vendor, each on its own scale
    assert sorted(chart["vendor"] for chart in charts if chart["name"] == "traffic") == sorted(VENDOR_NAMES)
    assert (tmp_path / "report.png").stat().st_size > 10_000


def test_charts_without_data_say_so() -> None:
    empty = ReportData(traffic=[], pages=[], channels=[], totals=[])
    assert 'data-marks="0"' in line_chart("traffic", "t", empty.traffic)
    assert "No data" in bar_chart("pages", "p", empty.pages, "views")
