"""Subscription display names and tags (resourcecontainers) beside the GUIDs in every report; Azure
text stays text; a subscription without a row shows its GUID alone."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote
from xml.etree import ElementTree

import jsonschema
import pytest

from backup_preflight.report import outputs
from backup_preflight.results_reader import scan_tags
from report.test_html import browser, island, needs_chromium, rows, settle  # noqa: F401 - browser is a fixture
from results_helpers import findings_of
from scan_helpers import XSS_IMG, XSS_SCRIPT, run, write_snapshot

from arg import SUB, resource_group_row, snapshot_doc, subscription_row, vm_row

SUB2 = "00000000-0000-0000-0000-000000000002"
NAME = "Contoso Prod " + XSS_SCRIPT
SCHEMA = Path(__file__).parents[2] / "src/backup_preflight/report/results.schema.json"


def in_sub(row: dict[str, Any], sub: str) -> dict[str, Any]:
    """The same row in another subscription (ids, NIC references and the subscriptionId column)."""
    moved: dict[str, Any] = json.loads(json.dumps(row).replace(SUB, sub))
    return moved


def tagged_doc() -> dict[str, Any]:
    """vm-a1 (own tags), vm-a2 in RG-App and vm-d1 in RG-Data of a named subscription; vm-b1 and vm-b2 in
    a second subscription that resourcecontainers has no row for. All fail VMBK-AGENT-001."""
    vms = [vm_row("vm-a1", provision=False, tags={"owner": XSS_IMG, "Env": "Prod"}),
           vm_row("vm-a2", provision=False), vm_row("vm-d1", provision=False, rg="RG-Data"),
           *(in_sub(vm_row(name, provision=False), SUB2) for name in ("vm-b1", "vm-b2"))]
    containers = [subscription_row(NAME, tags={"cc": "CC-1"}),
                  resource_group_row("RG-App", tags={"team": "app " + XSS_SCRIPT}),
                  # Azure spells the same group's id in another case than the VM's; it still joins.
                  {**resource_group_row("RG-Data", tags={"team": "data"}),
                   "id": f"/subscriptions/{SUB}/resourcegroups/rg-data"}]
    return {"schemaVersion": 1, "collectedAt": "2026-11-20T06:00:00Z", "scope": {"subscriptions": [SUB, SUB2]},
            "tables": {"resources": vms, "resourcecontainers": containers}, "errors": []}


@pytest.fixture(scope="module")
def tagged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tagged")
    outputs.write_all(run(write_snapshot(out / "s.json", tagged_doc())), out / "reports")
    return out / "reports"


def vm_id(name: str) -> str:
    rg = "RG-Data" if name == "vm-d1" else "RG-App"
    sub = SUB2 if name.startswith("vm-b") else SUB
    return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines/{name}"


def test_results_json_names_the_subscription_beside_the_guid(tagged: Path) -> None:
    doc = json.loads((tagged / "results.json").read_text())
    jsonschema.validate(doc, json.loads(SCHEMA.read_text()))
    # Once per subscription, not per finding (1.7 M findings at 100,000 VMs would carry 77 MB of names).
    assert doc["subscriptions"] == {SUB: {"displayName": NAME, "state": "Enabled", "tags": {"cc": "CC-1"}}}
    assert all("subscriptionName" not in f for f in doc["findings"])
    assert {f["subscriptionId"] for f in findings_of(doc)} == {SUB, SUB2}
    assert doc["coverage"]["subscriptionsWithoutName"] == [SUB2]
    assert doc["coverage"]["errors"] == [] and "resourcecontainers" not in doc["coverage"]["notCollected"]


def test_results_json_keeps_every_tag_the_reports_show_once(tmp_path: Path) -> None:
    """The VM's own tags in its `vms` entry, each resource group's once under `resourceGroups`, each
    subscription's under `subscriptions`: merge rebuilds exactly what the scan showed from them."""
    result = run(write_snapshot(tmp_path / "s.json", tagged_doc()))
    outputs.write_all(result, tmp_path / "out")
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    assert result.tags and scan_tags(doc) == result.tags
    assert list(doc["resourceGroups"].values()) == [{"team": "app " + XSS_SCRIPT}, {"team": "data"}]
    assert [vm["name"] for vm in doc["vms"] if "tags" in vm] == ["vm-a1"]


def test_findings_csv_and_junit_carry_the_display_name(tagged: Path) -> None:
    with (tagged / "findings.csv").open(newline="") as handle:
        table = list(csv.DictReader(handle))
    failing = {(r["resourceName"], r["subscriptionId"], r["subscriptionName"]) for r in table if r["status"] == "fail"
               and r["policyId"] == "VMBK-AGENT-001"}
    assert failing == {("vm-a1", SUB, NAME), ("vm-a2", SUB, NAME), ("vm-d1", SUB, NAME),
                       ("vm-b1", SUB2, ""), ("vm-b2", SUB2, "")}
    suite = next(s for s in ElementTree.parse(tagged / "junit.xml").getroot() if s.get("name") == "VMBK-AGENT-001")
    cases = {c.get("name"): (c.findtext("system-out") or "") for c in suite.iter("testcase")}
    # The name keeps the GUID (stable when a subscription is renamed); the names are said once per suite.
    assert cases[f"vm-a1 (rg-app, {SUB})"] == vm_id("vm-a1")
    assert cases[f"vm-b1 (rg-app, {SUB2})"] == vm_id("vm-b1")
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert json.loads(props["subscription.names"]) == {SUB: NAME}


def test_the_index_carries_names_and_tags_once(tagged: Path) -> None:
    page = (tagged / "report.html").read_text()
    assert XSS_SCRIPT not in page and "<img" not in page
    assert f'<option value="{SUB}">Contoso Prod &lt;script&gt;alert(1)&lt;/script&gt; ({SUB})</option>' in page
    assert f'<option value="{SUB2}">{SUB2}</option>' in page
    index = island(page)["index"]
    assert dict(zip(index["subs"], index["subNames"], strict=True)) == {SUB: NAME, SUB2: ""}
    tags = {tuple(map(tuple, t)) for t in index["tagsets"]}
    assert tags == {(("Env", "Prod"), ("owner", XSS_IMG)), (("team", "app " + XSS_SCRIPT),), (("team", "data"),),
                    (("cc", "CC-1"),)}


@needs_chromium
def test_names_and_tags_are_shown_searched_and_filtered_as_text(browser: Any, tagged: Path) -> None:  # noqa: F811
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    browser.get((tagged / "report.html").as_uri())
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []
    cells = {r.get_attribute("data-id"): r.find_elements(By.TAG_NAME, "td") for r in rows(browser)}
    assert len(cells) == 5
    assert cells[vm_id("vm-a1")][2].text.split("\n") == [NAME, SUB]
    assert cells[vm_id("vm-b1")][2].text == SUB2  # no row: the GUID alone
    assert cells[vm_id("vm-a1")][3].get_attribute("title") == f"Env=Prod · owner={XSS_IMG}"

    def shown(**filters: str) -> set[str]:
        for field, text in filters.items():
            box = browser.find_element(By.ID, field)
            box.send_keys(Keys.CONTROL, "a", Keys.NULL, Keys.DELETE, *([text] if text else []))  # typed: input events
        table = browser.find_element(By.ID, "vm-table")
        typed = {attr: browser.find_element(By.ID, field).get_attribute("value").strip().lower()
                 for attr, field in (("data-q", "q"), ("data-tag", "f-tag"))}
        settle(browser, lambda: all((table.get_attribute(attr) or "") == value for attr, value in typed.items()))
        return {r.get_attribute("data-id").rsplit("/", 1)[1] for r in rows(browser)}

    assert shown(q="contoso prod <script>") == {"vm-a1", "vm-a2", "vm-d1"}
    assert shown(q="team=data") == {"vm-d1"}
    assert shown(q="", **{"f-tag": "Team=DATA"}) == {"vm-d1"}
    assert shown(**{"f-tag": "cc"}) == {"vm-a1", "vm-a2", "vm-d1"}
    assert shown(**{"f-tag": "owner"}) == {"vm-a1"}
    assert shown(**{"f-tag": "team=app"}) == set()  # a value matches whole, not in part
    assert shown(**{"f-tag": ""}) == {"vm-a1", "vm-a2", "vm-d1", "vm-b1", "vm-b2"}
    Select(browser.find_element(By.ID, "f-sub")).select_by_visible_text(f"{NAME} ({SUB})")
    assert {r.get_attribute("data-id") for r in rows(browser)} == {vm_id(n) for n in ("vm-a1", "vm-a2", "vm-d1")}

    browser.get((tagged / "report.html").as_uri() + "#vm=" + quote(vm_id("vm-a1"), safe=""))
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018 - reading it is what raises
    card = browser.find_element(By.ID, "vm-detail")
    assert f"rg-app · {NAME} ({SUB})" in card.find_element(By.CSS_SELECTOR, ".where").text
    tags = [t.text for t in card.find_elements(By.CSS_SELECTOR, ".vtags .tag")]
    assert tags == ["Env=Prod", f"owner={XSS_IMG}", f"team=app {XSS_SCRIPT}", "cc=CC-1"]
    assert browser.execute_script("return document.images.length") == 0
    assert browser.execute_script("return document.scripts.length") == 2
    browser.get((tagged / "report.html").as_uri() + "#vm=" + quote(vm_id("vm-b1"), safe=""))
    card = browser.find_element(By.ID, "vm-detail")
    assert card.find_element(By.CSS_SELECTOR, ".where").text == f"rg-app · {SUB2}"
    assert card.find_elements(By.CSS_SELECTOR, ".vtags") == []


@needs_chromium
def test_a_vm_named_otherwise_than_its_id_keeps_its_id_and_its_tags(browser: Any, tmp_path: Path) -> None:  # noqa: F811
    from selenium.webdriver.common.by import By

    row = {**vm_row("vm-c1", tags={"role": "c"}), "name": "VM-C1"}
    outputs.write_all(run(write_snapshot(tmp_path / "s.json", snapshot_doc([row]))), tmp_path / "out")
    page = tmp_path / "out" / "report.html"
    [vm] = island(page.read_text())["index"]["vms"]
    assert vm[0] == "VM-C1" and vm[4:] == ["vm-c1", 0]  # the id's own segment, then the tag set
    browser.get(page.as_uri() + "#vm=" + quote(row["id"], safe=""))
    card = browser.find_element(By.ID, "vm-detail")
    assert card.find_element(By.CSS_SELECTOR, "h3").text == "VM-C1"
    assert [t.text for t in card.find_elements(By.CSS_SELECTOR, ".vtags .tag")] == ["role=c"]
