"""Report sizes, and report.html's speed in headless Chromium, for the reports of one scan.

    backup-preflight demo-estate --vms 100000 --output /tmp/big.json.gz
    backup-preflight scan --snapshot /tmp/big.json.gz --output-dir /tmp/big-reports
    python benchmarks/report_bench.py /tmp/big-reports

Measures: the size of every file; junit.xml's testcase count; in Chromium (Debian's chromium
and chromium-driver), the time from navigation until the VM list is rendered, the list's own
start-up time, the time a search takes to filter and render, and opening a VM by deep link.
Figures go into docs/reports.md by hand, with the command.
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote
from xml.etree.ElementTree import iterparse

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def browser(profile: str) -> Any:
    """Headless Chromium with its profile in `profile`, a folder the caller removes."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--window-size=1280,900",
                "--disable-background-networking", f"--user-data-dir={profile}"):
        options.add_argument(arg)
    options.binary_location = CHROMIUM
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def search(driver: Any, text: str) -> tuple[float, float, str]:
    """Wall time from typing to the re-rendered list (incl. the 100 ms debounce), the filter's own time, result."""
    driver.execute_script("var q = document.getElementById('q'); q.value = ''; q.dispatchEvent(new Event('input'));")
    time.sleep(0.5)
    start = time.perf_counter()
    driver.execute_script("var q = document.getElementById('q'); q.value = arguments[0];"
                          "q.dispatchEvent(new Event('input'));", text)
    while driver.execute_script("return document.getElementById('vm-table').getAttribute('data-q')") != text.lower():
        time.sleep(0.005)
    wall = time.perf_counter() - start
    own = float(driver.execute_script("return document.getElementById('vm-table').getAttribute('data-apply-ms')"))
    return wall * 1000, own, driver.execute_script("return document.getElementById('shown').textContent")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("reports", type=Path)
    args = parser.parse_args()
    for f in sorted(args.reports.iterdir()):
        print(f"{f.name:14} {f.stat().st_size / 1e6:10.1f} MB")
    cases = sum(1 for _, el in iterparse(args.reports / "junit.xml") if el.tag == "testcase")
    print(f"junit.xml testcases: {cases:,}")

    page = args.reports / "report.html"
    island = re.search(r'id="report-data">(.*?)</script>', page.read_text(encoding="utf-8"), re.S)
    index = json.loads(island[1])["index"] if island else {"vms": []}
    print(f"report.html: {len(index['vms']):,} VMs indexed, {len(index.get('text', [])):,} distinct texts")
    last = index["vms"][-1]
    failing = next(vm for vm in reversed(index["vms"]) if any(f[1] == "f" for f in vm[3]))

    with tempfile.TemporaryDirectory(prefix="bp-bench-") as profile:
        measure(browser(profile), page, index, failing, last)


def measure(driver: Any, page: Path, index: dict[str, Any], failing: list[Any], last: list[Any]) -> None:
    """Load the page, search three texts and open a failing VM by deep link, timing each; then quit the browser."""
    try:
        start = time.perf_counter()
        driver.get(page.as_uri())  # returns after the load event, i.e. after the list's script ran
        loaded = time.perf_counter() - start
        ready = driver.execute_script("return document.getElementById('vm-table').getAttribute('data-ready-ms')")
        print(f"interactive: {loaded:.2f} s from navigation (the list's own start-up: {ready} ms)")
        for text in (failing[0], last[0], "was not collected"):
            wall, own, shown = search(driver, text)
            print(f"search {text!r}: {wall:.0f} ms to rendered ({own:.0f} ms filtering and rendering) -> {shown}")
        prefix = index["prefixes"][failing[1]][0]
        rid = prefix + next((cell for cell in failing[4:] if isinstance(cell, str)), failing[0])
        start = time.perf_counter()
        driver.execute_script("location.hash = arguments[0]", "#vm=" + quote(rid, safe=""))
        while not driver.execute_script("return !document.getElementById('vm-detail').hidden"):
            time.sleep(0.005)
        print(f"deep link to {failing[0]}: {(time.perf_counter() - start) * 1000:.0f} ms")
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
