"""Split a snapshot into shards by subscription, and mask what may differ between a merge and one scan.

Shared by tests/review/test_merge.py and benchmarks/shard_bench.py. The split is deliberately
simple (a row goes where the subscription in its id goes), independent of the scanner's code.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

_SUB = re.compile(r"^/subscriptions/([^/]+)", re.I)
OUTPUTS = ("results.json", "report.html", "junit.xml", "summary.md", "findings.csv")


def split_by_subscription(doc: dict[str, Any], shards: int) -> list[dict[str, Any]]:
    """`shards` snapshot documents; subscriptions dealt out in turn, every row with its subscription."""
    subs = [s.lower() for s in doc["scope"]["subscriptions"]]
    home = {sub: i % shards for i, sub in enumerate(subs)}
    parts = [{**doc, "scope": {"subscriptions": [s for s in doc["scope"]["subscriptions"] if home[s.lower()] == i]},
              "tables": {name: [] for name in doc["tables"]}, "errors": []} for i in range(shards)]
    for name, rows in doc["tables"].items():
        for row in rows:
            parts[home[_SUB.match(row["id"])[1].lower()]]["tables"][name].append(row)
    return parts


def write_shards(doc: dict[str, Any], shards: int, folder: Path) -> list[Path]:
    paths = []
    for i, part in enumerate(split_by_subscription(doc, shards)):
        paths.append(folder / f"shard-{i}.json")
        paths[-1].write_text(json.dumps(part))
    return paths


def masked(output_dir: Path, name: str) -> str:
    """An output with the run's own start and end times, the junit duration and the shard lines masked."""
    scan = json.loads((output_dir / "results.json").read_text(encoding="utf-8"))["scan"]
    text = (output_dir / name).read_text(encoding="utf-8")
    if name == "results.json":
        doc = json.loads(text)
        doc["scan"].pop("shard", None)
        doc["scan"].pop("shards", None)
        text = json.dumps(doc, indent=1)
    text = text.replace(scan["startedAt"], "<time>").replace(scan["finishedAt"], "<time>")
    if name == "junit.xml":
        text = re.sub(r'(<testsuites [^>]*) time="[0-9.]+"', r'\1 time="<duration>"', text, count=1)
        text = re.sub(r'\n *<property name="shards" value="[^"]*"/>', "", text)
    if name == "report.html":
        text = re.sub(r"\n *<dt>Shards</dt><dd>[^<]*</dd>", "", text)
    if name == "summary.md":
        text = re.sub(r"\n(Partial run: shard|Merged from \d+ shards:)[^\n]*\n", "", text)
    return text
