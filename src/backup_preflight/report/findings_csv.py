"""findings.csv: one row per finding that needs attention, one pass-count row per policy, and one
`incomplete` row per reason the run is incomplete (a scope not collected, nothing evaluated or assessed).

For auditors and spreadsheets. `count` is 1 on a finding's row and the number of passing VMs on a
policy's `pass` row, so a pivot on `status` × `count` adds up to the scan's totals (not-applicable
findings are left out); `incomplete` rows are no finding, so they are their own status, and an auditor
who opens only this file still sees what the scan could not look at. Cells that a spreadsheet would run
as a formula (starting with `=`, `+`, `-`, `@`, tab or carriage return) get a leading apostrophe:
Azure-provided text is untrusted, so every cell is also made safe as every report's text is (text.safe:
secrets redacted, controls and bidi overrides shown as escapes, one line).
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from backup_preflight.findings import NOT_APPLICABLE, PASS, Finding, count_by, without_status
from backup_preflight.report.view import run_problems
from backup_preflight.results import ScanResult
from backup_preflight.text import safe

COLUMNS = ("policyId", "severity", "cause", "status", "verdict", "count", "resourceName", "resourceGroup",
           "subscriptionId", "subscriptionName", "resourceId", "message", "exemption", "baseline")
_FORMULA = ("=", "+", "-", "@", "\t", "\r")
#: The statuses without a row of their own: passes are counted per policy, not-applicable left out.
_UNLISTED = frozenset({PASS, NOT_APPLICABLE})
#: The status of a row that names why the run is incomplete: not a finding's.
INCOMPLETE = "incomplete"


def cell(value: object) -> str:
    """The value as text a spreadsheet shows rather than evaluates, made safe."""
    text = safe(value)
    return "'" + text if text.startswith(_FORMULA) else text


def write(result: ScanResult, path: Path) -> None:
    findings = result.findings
    passes = Counter({policy_id: n for (policy_id, status), n in count_by(findings, ("policy_id", "status")).items()
                      if status == PASS})
    fields: dict[str, str] = {}  # each distinct text made safe and quoted once: names, ids and messages repeat

    def field(value: object) -> str:
        if not isinstance(value, str):
            return _quoted(cell(value))
        text = fields.get(value)
        if text is None:
            text = fields[value] = _quoted(cell(value))
        return text

    with path.open("w", encoding="utf-8", newline="") as out:  # rows of fields joined: csv.writer took twice as long
        out.write(_line(map(_quoted, COLUMNS)))
        subscription_name = result.subscription_name
        for f in without_status(findings, _UNLISTED):
            out.write(_line(map(field, _row(f, subscription_name(f.subscription_id)))))
        for p in result.policies:
            out.write(_line(map(_quoted, (p.id, p.severity, p.cause, PASS, PASS, str(passes[p.id]), "", "", "", "",
                                          "", f"{passes[p.id]} VMs pass", "", ""))))
        for name, message in run_problems(result):
            out.write(_line(_quoted(cell(v)) for v in ("", "", "coverage", INCOMPLETE, INCOMPLETE, 1, name, "", "",
                                                       "", "", message, "", "")))


def _line(fields: Iterable[str]) -> str:
    """One row of quoted fields, as csv.writer writes a row of several fields."""
    return ",".join(fields) + _END


#: How csv.writer ends a row.
_END = csv.get_dialect("excel").lineterminator


def _quoted(text: str) -> str:
    """The text as csv.writer writes it in a row of several fields (QUOTE_MINIMAL: quoted when it holds the
    delimiter, the quote or a line break, the quote doubled)."""
    if _NEEDS_QUOTES.search(text) is None:
        return text
    return '"' + text.replace('"', '""') + '"'


_NEEDS_QUOTES = re.compile('[,"\r\n]')


def _row(f: Finding, subscription_name: str) -> tuple[object, ...]:
    notes = f.annotations
    exemption = notes.get("exemption") or {}
    return (f.policy_id, f.severity, f.cause, f.status, notes.get("verdict", f.status), 1, f.resource_name,
            f.resource_group, f.subscription_id, subscription_name, f.resource_id, f.message, exemption.get("id", ""),
            notes.get("baseline", ""))
