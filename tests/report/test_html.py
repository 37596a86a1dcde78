"""report.html: static checks, then the real thing in headless Chromium (Debian's chromium + chromedriver)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from backup_preflight.report import outputs
from backup_preflight.results import ScanResult
from backup_preflight.review import Review, baseline, exemptions
from results_helpers import findings_of
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


LETTER = {"fail": "f", "error": "e", "unknown": "u", "exempt": "x"}


def island(page: str) -> dict[str, Any]:
    found = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page, re.S)
    assert found
    return json.loads(found[1])


def expected_letters(results: dict[str, Any]) -> dict[str, str]:
    """Oracle: per VM, one letter per cause, the worst status of that cause's findings."""
    order = ["fail", "error", "unknown", "exempt", "pass", "notApplicable"]
    causes = sorted({p["cause"] for p in results["policies"]})
    worst: dict[str, list[int]] = {}
    for f in findings_of(results):
        slots = worst.setdefault(f["resourceId"], [len(order) - 1] * len(causes))
        i = causes.index(f["cause"])
        slots[i] = min(slots[i], order.index(f["status"]))
    return {vm: "".join("feuxp-"[n] for n in slots) for vm, slots in worst.items()}


def decoded_vms(index: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The index read back the way report.js reads it."""
    out = {}
    for row in index["vms"]:
        prefix, sub, rg, _ = index["prefixes"][row[1]]
        rid = prefix + next((cell for cell in row[4:] if isinstance(cell, str)), row[0])
        out[rid] = {"name": row[0], "sub": index["subs"][sub], "rg": rg, "causes": row[2],
                    "findings": sorted((index["policies"][f[0]]["id"], f[1], index["text"][f[2]]) for f in row[3])}
    return out


def test_every_vm_is_indexed_with_its_findings_and_status_per_cause(report: tuple[Path, dict[str, Any]]) -> None:
    results = report[1]
    index = island(report[0].read_text())["index"]
    vms = decoded_vms(index)
    letters = expected_letters(results)
    assert set(vms) == set(letters)
    for rid, vm in vms.items():
        assert vm["causes"] == letters[rid]
        mine = [f for f in findings_of(results) if f["resourceId"] == rid]
        assert vm["name"] == mine[0]["resourceName"] and vm["rg"] == mine[0]["resourceGroup"].lower()
        assert vm["sub"] == mine[0]["subscriptionId"]
        assert vm["findings"] == sorted((f["policyId"], LETTER[f["status"]], f["message"])
                                        for f in mine if f["status"] in LETTER)
    page = report[0].read_text()
    assert 'data-status="pass"' not in page
    assert "EX-7" in page and "decommissioning" in page
    assert "Fixed since the baseline" in page and "vm-gone" in page


def test_no_failing_vm_is_left_out_and_unknown_only_vms_are_grouped_by_reason(tmp_path: Path) -> None:
    doc = estate(extra=[f"vm-x{i:03}" for i in range(300)])
    for vm in doc["tables"]["resources"][-150:]:  # half of them healthy, with unknowns only
        vm["properties"]["osProfile"]["linuxConfiguration"]["provisionVMAgent"] = True
    result = run(write_snapshot(tmp_path / "s.json", doc))
    outputs.write_all(result, tmp_path / "out")
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    index = island((tmp_path / "out" / "report.html").read_text())["index"]
    vms = decoded_vms(index)
    failing = {f["resourceId"] for f in findings_of(results) if f["status"] in ("fail", "error")}
    assert len(failing) > 150 and failing <= set(vms)
    assert all(any(s in "fe" for _, s, _ in vms[rid]["findings"]) for rid in failing)
    only_unknown: dict[str, set[tuple[str, str]]] = {}  # VM → its unknown reasons, ("", "") for anything worse
    for f in findings_of(results):
        if f["status"] in LETTER:
            reason = (f["policyId"], f["message"]) if f["status"] == "unknown" else ("", "")
            only_unknown.setdefault(f["resourceId"], set()).add(reason)
    oracle: dict[tuple[str, str], int] = {}
    for reasons in only_unknown.values():
        if ("", "") not in reasons:
            for reason in reasons:
                oracle[reason] = oracle.get(reason, 0) + 1
    got = {(index["policies"][p]["id"], index["text"][m]): n for p, m, n in index["groups"]}
    assert got == oracle and oracle
    page = (tmp_path / "out" / "report.html").read_text()
    top = max(oracle.values())
    assert f">{top} VMs</button>" in page


# --- headless Chromium -------------------------------------------------------------------------

needs_chromium = pytest.mark.skipif(not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
                                    reason="needs Debian's chromium and chromium-driver (apt-get install chromium "
                                           "chromium-driver); CI installs them")


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One headless Chromium for the module; its profile lives in pytest's temporary folder, so none is left in /tmp."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    profile = tmp_path_factory.mktemp("chromium-profile")
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


def rows(page: Any) -> list[Any]:
    from selenium.webdriver.common.by import By

    return page.find_elements(By.CSS_SELECTOR, "#vm-rows tr")


def settle(page: Any, check: Any) -> None:
    from selenium.webdriver.support.wait import WebDriverWait

    WebDriverWait(page, 5).until(lambda d: check())


@pytest.fixture(scope="module")
def big_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """123 VMs: more than two pages of the list; vm-x* fail the agent policy, vm-ok and vm-stopped do not."""
    out = tmp_path_factory.mktemp("big")
    result = run(write_snapshot(out / "s.json", estate(extra=[f"vm-x{i:03}" for i in range(120)])))
    outputs.write_all(result, out / "reports")
    return out / "reports" / "report.html", json.loads((out / "reports" / "results.json").read_text())


@needs_chromium
def test_vm_list_pages_and_sorts(browser: Any, big_report: tuple[Path, dict[str, Any]]) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    browser.get(big_report[0].as_uri())
    assert len(rows(browser)) == 50
    assert browser.find_element(By.ID, "shown").text == "123 of 123 VMs"
    first = rows(browser)[0].get_attribute("data-id")
    assert "vm-noagent" in first or "vm-x" in first, "worst first: a VM with a high failure"
    browser.find_element(By.ID, "next").click()
    browser.find_element(By.ID, "next").click()
    assert len(rows(browser)) == 23 and "101–123 of 123" in browser.find_element(By.ID, "page-label").text
    Select(browser.find_element(By.ID, "sort")).select_by_value("name")
    names = [r.find_element(By.TAG_NAME, "a").text for r in rows(browser)]
    assert names == sorted(names) and names[0] == "vm-noagent"


@needs_chromium
def test_filters_search_and_deep_link_find_every_failing_vm(browser: Any,
                                                            big_report: tuple[Path, dict[str, Any]]) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    results = big_report[1]
    browser.get(big_report[0].as_uri())
    for status in ("unknown", "exempt", "pass"):
        browser.find_element(By.ID, f"filter-{status}").click()
    failing = {f["resourceId"] for f in findings_of(results) if f["status"] in ("fail", "error")}
    assert browser.find_element(By.ID, "shown").text == f"{len(failing)} of 123 VMs"
    Select(browser.find_element(By.ID, "f-cause")).select_by_visible_text("vm-agent")
    assert all("st-f" in r.get_attribute("innerHTML") for r in rows(browser))
    # the last failing VM by name: on no first page, found by search, opened by its link
    target = max(failing)
    name = target.rsplit("/", 1)[1]
    browser.find_element(By.ID, "q").send_keys(name)
    settle(browser, lambda: browser.find_element(By.ID, "shown").text == "1 of 123 VMs")
    link = rows(browser)[0].find_element(By.TAG_NAME, "a")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", link)  # not under the sticky filters
    link.click()
    detail = browser.find_element(By.ID, "vm-detail")
    settle(browser, detail.is_displayed)
    message = next(f["message"] for f in findings_of(results) if f["resourceId"] == target and f["status"] == "fail")
    assert message in detail.text and target in detail.text
    assert browser.current_url.endswith("#vm=" + quote(target, safe=""))
    browser.get("about:blank")
    browser.get(big_report[0].as_uri() + "#vm=" + quote(target.upper(), safe=""))
    assert message in browser.find_element(By.ID, "vm-detail").text, "a deep link opens the VM, in any case"


@needs_chromium
def test_an_unknown_reason_lists_its_vms(page: Any, report: tuple[Path, dict[str, Any]]) -> None:
    from selenium.webdriver.common.by import By

    buttons = page.find_elements(By.CSS_SELECTOR, "button.group")
    assert buttons
    n = int(buttons[0].text.split()[0])
    buttons[0].click()
    assert len(rows(page)) == n and page.find_element(By.ID, "group-filter").is_displayed()
    page.find_element(By.ID, "group-clear").click()
    assert len(rows(page)) == len(island(report[0].read_text())["index"]["vms"])


@needs_chromium
def test_hostile_text_renders_as_text(browser: Any, report: tuple[Path, dict[str, Any]]) -> None:
    from selenium.common.exceptions import NoAlertPresentException

    results = report[1]
    victim = next(f for f in findings_of(results) if f["message"] == f"tag owner={XSS_IMG}")
    browser.get(report[0].as_uri() + "#vm=" + quote(victim["resourceId"], safe=""))
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018 - reading it is what raises
    text = browser.execute_script("return document.body.textContent")
    assert XSS_SCRIPT in text and XSS_IMG in text
    assert browser.execute_script("return document.images.length") == 0
    assert browser.execute_script("return document.scripts.length") == 2


@needs_chromium
def test_an_exempt_finding_shows_its_exemption_and_new_only_filters(browser: Any,
                                                                     report: tuple[Path, dict[str, Any]]) -> None:
    from selenium.webdriver.common.by import By

    results = report[1]
    exempt = next(f for f in findings_of(results) if f["status"] == "exempt")
    browser.get(report[0].as_uri() + "#vm=" + quote(exempt["resourceId"], safe=""))
    detail = browser.find_element(By.ID, "vm-detail").text
    assert "EX-7" in detail and "decommissioning" in detail
    new_vms = {f["resourceId"] for f in findings_of(results) if f.get("baseline") == "new"}
    assert new_vms and len(new_vms) < len(rows(browser))
    browser.find_element(By.ID, "f-new").click()
    assert {r.get_attribute("data-id") for r in rows(browser)} == new_vms


@needs_chromium
def test_an_empty_scan_renders_without_errors(browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    doc = estate()
    doc["tables"]["resources"] = []
    outputs.write_all(run(write_snapshot(tmp_path / "s.json", doc)), tmp_path / "out")
    browser.get((tmp_path / "out" / "report.html").as_uri())
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []
    assert browser.find_element(By.ID, "shown").text == "0 of 0 VMs"
    assert browser.find_element(By.ID, "no-match").text == "No VM was evaluated."


@needs_chromium
def test_a_vm_card_shows_its_last_failed_backup_job_beside_the_causes(browser: Any, tmp_path: Path) -> None:
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

    from job_helpers import HOSTILE, job_result

    result = job_result(tmp_path)
    outputs.write_all(result, tmp_path / "out")
    noagent = next(d for d in result.diagnoses if d["resourceName"] == "vm-noagent")
    browser.get((tmp_path / "out" / "report.html").as_uri() + "#vm=" + quote(noagent["resourceId"], safe=""))
    box = browser.find_element(By.CSS_SELECTOR, "#vm-detail .lastjob")
    assert box.find_element(By.CSS_SELECTOR, ".jobhead").text == (
        "2026-11-19T02:00:00Z Backup: UserErrorGuestAgentStatusUnavailable – VM Agent unable to communicate with "
        "Azure Backup")
    causes = [li.text for li in box.find_elements(By.CSS_SELECTOR, ".jobcause")]
    assert causes[0].startswith("vm-agent – failing: VMBK-AGENT-001 fail")
    assert causes[1].startswith("backup-extension – unknown:")
    link = box.find_element(By.CSS_SELECTOR, ".jobnote a")
    assert link.get_attribute("href").startswith("https://learn.microsoft.com/azure/backup/")
    stopped = next(d for d in result.diagnoses if d["resourceName"] == "vm-stopped")
    browser.get((tmp_path / "out" / "report.html").as_uri() + "#vm=" + quote(stopped["resourceId"], safe=""))
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018 - reading it is what raises
    box = browser.find_element(By.CSS_SELECTOR, "#vm-detail .lastjob")
    assert HOSTILE in box.text and "no precondition this tool checks" in box.text
    assert browser.execute_script("return document.images.length") == 0
    ok = next(f for f in result.findings if f.resource_name == "vm-ok")
    browser.get((tmp_path / "out" / "report.html").as_uri() + "#vm=" + quote(ok.resource_id, safe=""))
    assert browser.find_elements(By.CSS_SELECTOR, "#vm-detail .lastjob") == []


@needs_chromium
def test_a_pass_that_rests_on_an_assumption_is_shown_with_it_and_no_fix(browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    from backup_preflight import scan
    from backup_preflight.results import Gate
    from scan_helpers import policies

    outputs.write_all(scan.run_scan(scan.demo_source(), policies(), Gate()), tmp_path / "out")
    findings = findings_of(json.loads((tmp_path / "out" / "results.json").read_text()))
    assumed = next(f for f in findings if f["status"] == "pass" and f["evidence"])
    browser.get((tmp_path / "out" / "report.html").as_uri() + "#vm=" + quote(assumed["resourceId"], safe=""))
    item = browser.find_element(By.CSS_SELECTOR, f"#vm-detail li.finding[data-policy='{assumed['policyId']}']")
    assert item.get_attribute("data-status") == "pass"
    assert "assumed absent (assumeNoOnPremisesDefaultRoute)" in item.text
    assert item.find_elements(By.CSS_SELECTOR, ".fix") == []
    plain = next(f for f in findings if f["policyId"] == assumed["policyId"] and f["status"] == "pass"
                 and not f["evidence"])
    browser.get((tmp_path / "out" / "report.html").as_uri() + "#vm=" + quote(plain["resourceId"], safe=""))
    assert browser.find_elements(By.CSS_SELECTOR, f"#vm-detail li.finding[data-policy='{plain['policyId']}']") == []
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []
