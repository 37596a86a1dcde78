"""report.html: one self-contained page for platform engineers and auditors.

Jinja2 with autoescape on; every Azure-provided string is untrusted and only ever rendered as
text. The page makes no network request: CSS and JS are inline and allowed by hash in a
Content-Security-Policy that forbids everything else, so even an escaping bug could not run
injected script. To stay complete and usable at 100,000 VMs, the VM list is not HTML: every VM
is one row of a compact JSON index (see vm_index.py) that the page's script pages, sorts,
searches and opens (`#vm=<resource id>`); passes appear as per-cause letters and counts. The
page is streamed to disk chunk by chunk.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import msgspec
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from backup_preflight import __version__
from backup_preflight.findings import ERROR, EXEMPT, FAIL, NOT_APPLICABLE, PASS, SEVERITIES, UNKNOWN
from backup_preflight.report import vm_index
from backup_preflight.report.view import (
    ATTENTION,
    EXIT_MEANING,
    deployment_causes,
    policy_counts,
    review_meta,
    shard_sentence,
    subscription_label,
    unnamed_note,
)
from backup_preflight.results import ScanResult
from backup_preflight.text import safe

MAX_FIXED = 200
#: Reasons listed for VMs whose only problems are unknowns; all of them are in the index.
MAX_GROUPS = 50
#: Display order: what needs action first.
STATUS_ORDER = (FAIL, ERROR, UNKNOWN, EXEMPT, PASS, NOT_APPLICABLE)


@dataclass(frozen=True, slots=True)
class Asset:
    """An inline stylesheet or script and its CSP source expression."""

    text: Markup
    csp: str


@cache
def _asset(name: str) -> Asset:
    text = resources.files("backup_preflight.report").joinpath("templates", name).read_text("utf-8")
    digest = base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
    return Asset(Markup(text), f"'sha256-{digest}'")  # our own static file, not data


@cache
def _environment() -> Environment:
    env = Environment(loader=PackageLoader("backup_preflight.report", "templates"), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, finalize=_inert)
    env.filters["http_url"] = http_url
    return env


def _inert(value: Any) -> Any:
    """Every string the page prints passes text.safe (secrets, controls, bidi overrides); our own
    markup (Markup: the inline CSS, JS and JSON) is not text from anyone else."""
    return value if isinstance(value, Markup) or not isinstance(value, str) else safe(value, keep_newlines=True)


def http_url(url: object) -> str | None:
    """Only http(s) links from policy files become hrefs; anything else is shown as text."""
    return url if isinstance(url, str) and url.lower().startswith(("https://", "http://")) else None


def script_json(data: Any) -> Iterator[str]:
    """JSON safe inside <script type="application/json">: no `<`, `>` or `&` can close the element.

    In pieces: objects key by key (sorted) and arrays element by element, each element encoded
    whole. Joined, they are exactly `msgspec.json.encode(data, order="sorted")` with those three
    characters escaped, but the page's index of 1,000,000 VMs (177 MB of text) is never one string.
    """
    if isinstance(data, dict):
        yield "{"
        for i, key in enumerate(sorted(data)):
            yield ("," if i else "") + _json_text(key) + ":"
            yield from script_json(data[key])
        yield "}"
    elif isinstance(data, list):
        yield "["
        for i, item in enumerate(data):
            yield ("," if i else "") + _json_text(item)
        yield "]"
    else:
        yield _json_text(data)


def _json_text(value: Any) -> str:
    text = msgspec.json.encode(value, order="sorted").decode()
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


#: Stands in the rendered page where the page's JSON goes; `write` streams the JSON in its place.
_DATA = Markup("<!-- report-data -->")


def write(result: ScanResult, path: Path) -> None:
    template = _environment().get_template("report.html.j2")
    page = context(result)
    data, page["data"] = page["data"], _DATA
    with path.open("w", encoding="utf-8", newline="\n") as out:
        for chunk in template.generate(**page):
            before, mark, after = chunk.partition(_DATA)
            out.write(before)
            if mark:
                out.writelines(script_json(data))
                out.write(after)


def context(result: ScanResult) -> dict[str, Any]:
    css, js = _asset("report.css"), _asset("report.js")
    index = vm_index.build(result, http_url)
    counts = policy_counts(result)
    s = result.summary
    total = max(s["total"], 1)
    meta = review_meta(result)
    return {
        "csp": (f"default-src 'none'; style-src {css.csp}; script-src {js.csp}; img-src data:; "
                "base-uri 'none'; form-action 'none'"),
        "css": css.text,
        "js": js.text,
        "result": result,
        "run": result.run,
        "cov": result.coverage,
        "summary": s,
        "gate": result.gate,
        "tool_version": __version__,
        "verdict": {0: "passed", 1: "failed"}.get(result.exit_code, "incomplete"),
        "exit_meaning": EXIT_MEANING.get(result.exit_code, ""),
        "statuses": STATUS_ORDER,
        "attention": ATTENTION,
        "severities": SEVERITIES,
        "bars": {"severity": [(sev, _bar(s["bySeverity"][sev], total)) for sev in SEVERITIES],
                 "cause": [(cause, _bar(c, total)) for cause, c in s["byCause"].items()]},
        "policies": [(p, counts.get(p.id, {})) for p in result.policies],
        "vm_total": len(index["vms"]),
        "groups": [(result.policies[pol], index["text"][msg], n) for pol, msg, n in index["groups"][:MAX_GROUPS]],
        "group_total": len(index["groups"]),
        "subscriptions": sorted(((sub, subscription_label(sub, name)) for sub, name in zip(
            index["subs"], index["subNames"], strict=True)), key=lambda pair: pair[1].lower()),
        "resource_groups": sorted({where[2] for where in index["prefixes"]}),
        "unnamed": unnamed_note(result),
        "causes": index["causes"],
        "plan": result.run.get("whatIf"),
        "shard": shard_sentence(result),
        "plan_causes": deployment_causes(result)[:MAX_FIXED],
        "exemptions": meta["exemptions"],
        "baseline": meta["baseline"],
        "fixed": meta["baseline"].get("fixed", [])[:MAX_FIXED],
        "policy_map": {p.id: p for p in result.policies},
        #: The page's JSON, as data: `write` streams it into the <script> element (script_json).
        "data": {"byStatus": s["byStatus"], "total": s["total"], "baseline": bool(meta["baseline"]), "index": index},
    }


def _bar(counts: dict[str, int], total: int) -> dict[str, Any]:
    """Stacked bar segments as SVG rectangles in a 0..1000 wide box (no inline styles: CSP)."""
    segments, x = [], 0.0
    row_total = sum(counts.get(st, 0) for st in STATUS_ORDER)
    for st in STATUS_ORDER:
        n = counts.get(st, 0)
        if n:
            width = 1000 * n / max(row_total, 1)
            segments.append({"status": st, "count": n, "x": round(x, 2), "width": round(width, 2)})
            x += width
    return {"segments": segments, "total": row_total, "share": round(100 * row_total / total, 1)}
