"""report.html: static checks, then the real thing in headless Chromium (Debian's chromium + chromedriver)."""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Iterator
from html import unescape
from pathlib import Path
from typing import Any

import pytest

from backup_preflight.report import html, outputs
from backup_preflight.results import ScanResult
from backup_preflight.review import Review, baseline, exemptions
from scan_helpers import XSS_IMG, XSS_SCRIPT, estate, run, write_snapshot

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


def hostile_result(tmp_path: Path) -> ScanResult:
    """A scan with a hostile VM name, message, evidence, an exemption, a baseline and a bad reference link."""
    prev = run(write_snapshot(tmp_path / "before.json", estate(extra=["vm-gone"])))
    outputs.write_all(prev, tmp_path / "prev")
    ex_file = tmp_path / "ex.json"
    ex_file.write_text(json.dumps({"exemptions": [{
        "id": "EX-7", "policies": ["VMBK-POWER-001"], "resources": ["*/vm-stopped"], "category": "waiver",
        "justification": "decommissioning " + XSS_SCRIPT, "owner": "ops", "expiresOn": "2099-01-01"}]}))
    review = Review(exemptions=exemptions.load(ex_file), baseline=baseline.load(tmp_path / "prev" / "results.json"))
    result = run(write_snapshot(tmp_path / "now.json", estate(name_suffix=XSS_SCRIPT)), review=review)
    victim = next(f for f in result.findings if f.status == "unknown")
    victim.message = f"tag owner={XSS_IMG}"
    victim.evidence = (f"tags.note is {XSS_SCRIPT}", "control \x07 char")
    result.policies[0].references = [*result.policies[0].references,
                                     {"title": "bad link", "url": "javascript:alert(1)"}]
    return result


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("report")
    outputs.write_all(hostile_result(out), out / "reports")
    return out / "reports" / "report.html", json.loads((out / "reports" / "results.json").read_text())


def test_untrusted_text_is_escaped_and_nothing_is_fetched(report: tuple[Path, dict[str, Any]]) -> None:
    page = report[0].read_text()
    assert XSS_SCRIPT not in page and "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    csp = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)"', page)
    assert csp and re.match(r"default-src 'none'; style-src 'sha256-[^']+'; script-src 'sha256-[^']+'; "
                            r"img-src data:", unescape(csp[1]))
    assert not re.search(r"<(link|iframe|object|embed|img)\b", page)
    assert not re.search(r"<[^<>]*\ssrc=", page)
    assert 'href="javascript:' not in page and "bad link (javascript:alert(1))" in page
    island = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page, re.S)
    assert island and "<" not in island[1]
    assert page.count("<script") == 2


def test_lists_attention_rows_only(report: tuple[Path, dict[str, Any]]) -> None:
    page = report[0].read_text()
    results = report[1]
    attention = [f for f in results["findings"] if f["status"] in ("fail", "error", "unknown", "exempt")]
    assert page.count('<li class="finding"') == len(attention)
    assert 'data-status="pass"' not in page
    assert "EX-7" in page and "decommissioning" in page
    assert "Fixed since the baseline" in page and "vm-gone" in page


def test_row_cap_keeps_whole_worst_vms_and_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(html, "MAX_ROWS", 20)  # more than the worst VM's 14 findings, less than two VMs'
    result = run(write_snapshot(tmp_path / "s.json", estate(extra=[f"vm-x{i}" for i in range(5)])))
    out = tmp_path / "report.html"
    html.write(result, out)
    page = out.read_text()
    assert 'id="capped"' in page and "more VMs" in page
    assert page.count('<li class="finding"') <= 20


# --- headless Chromium -------------------------------------------------------------------------

needs_chromium = pytest.mark.skipif(not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
                                    reason="needs Debian's chromium and chromium-driver (apt-get install chromium "
                                           "chromium-driver); CI installs them")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    profile = tempfile.mkdtemp(prefix="bp-chromium-")
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                f"--user-data-dir={profile}", "--window-size=1280,900"):
        options.add_argument(arg)
    options.binary_location = str(CHROMIUM)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def page(browser: Any, report: tuple[Path, dict[str, Any]]) -> Any:
    browser.get(report[0].as_uri())
    return browser


@needs_chromium
def test_loads_cleanly_offline(page: Any) -> None:
    errors = [e for e in page.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []
    assert page.execute_script("return performance.getEntriesByType('resource').length") == 0
    csp = page.execute_script(
        "return document.querySelector('meta[http-equiv=\"Content-Security-Policy\"]').content")
    assert csp.startswith("default-src 'none'")


@needs_chromium
def test_counts_match_results_json(page: Any, report: tuple[Path, dict[str, Any]]) -> None:
    from selenium.webdriver.common.by import By

    summary = report[1]["summary"]
    for status, count in summary["byStatus"].items():
        assert page.find_element(By.ID, f"count-{status}").text == str(count)
    data = json.loads(page.execute_script("return document.getElementById('report-data').textContent"))
    assert data["byStatus"] == summary["byStatus"]


@needs_chromium
def test_filters_hide_rows(page: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select
    from selenium.webdriver.support.wait import WebDriverWait

    def visible(status: str) -> int:
        return sum(r.is_displayed() for r in page.find_elements(By.CSS_SELECTOR, f"li.finding[data-status={status}]"))

    assert visible("unknown") > 0 and visible("fail") > 0
    page.find_element(By.ID, "filter-unknown").click()
    assert visible("unknown") == 0 and visible("fail") > 0
    assert "findings" in page.find_element(By.ID, "shown").text
    Select(page.find_element(By.ID, "f-cause")).select_by_visible_text("vm-agent")
    shown = [r for r in page.find_elements(By.CSS_SELECTOR, "li.finding") if r.is_displayed()]
    assert shown and all(r.get_attribute("data-cause") == "vm-agent" for r in shown)
    search = page.find_element(By.ID, "q")
    search.send_keys("vm-ok")
    WebDriverWait(page, 5).until(lambda d: all(
        "vm-ok" in a.text or not a.is_displayed() for a in d.find_elements(By.CSS_SELECTOR, "article.vm")))


@needs_chromium
def test_hostile_text_renders_as_text(page: Any) -> None:
    from selenium.common.exceptions import NoAlertPresentException

    with pytest.raises(NoAlertPresentException):
        page.switch_to.alert.text  # noqa: B018 - reading it is what raises
    text = page.execute_script("return document.body.textContent")
    assert XSS_SCRIPT in text and XSS_IMG in text
    assert page.execute_script("return document.images.length") == 0
    assert page.execute_script("return document.scripts.length") == 2
