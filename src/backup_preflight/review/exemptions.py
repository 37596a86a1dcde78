"""Exemptions: findings a team has accepted (waiver) or covered another way (mitigated).

An exemption never hides a finding: the finding becomes `exempt`, keeps its real verdict in
`verdict` and carries the exemption that decided it, so every report shows who accepted what,
why and until when. Only fail, unknown and error findings can be exempted; a pass stays a pass
(the exemption summary shows exemptions that matched nothing, so stale ones can be removed).
An expired exemption exempts nothing, and the finding says in its evidence that it expired.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from backup_preflight.errors import InputError, Problem, schema_problems
from backup_preflight.findings import ERROR, EXEMPT, FAIL, UNKNOWN, Finding, with_status
from backup_preflight.snapshot import read_written_json

EXEMPTIBLE = (FAIL, UNKNOWN, ERROR)
#: An exemption whose resource wildcard exempts more findings than this gets a warning in every
#: report: a `*` that waives half the estate should be a decision someone sees, not a side effect.
WIDE_EXEMPTION = 50
_GLOB = re.compile(r"[*?\[]")


@cache
def exemptions_schema() -> dict[str, Any]:
    text = resources.files("backup_preflight.review").joinpath("exemptions.schema.json").read_text("utf-8")
    return json.loads(text)


@dataclass(frozen=True, slots=True)
class Exemption:
    """One compiled entry: what it covers, who owns it and the first instant it no longer applies.

    It covers a finding when its policy selector (ids or causes) and its resource selector (exact
    ids, glob patterns or scopes) both match; `_Index` does the matching.
    """

    id: str
    category: str
    justification: str
    owner: str
    ticket: str
    expires_on: str | None
    ends_at: datetime | None
    policies: frozenset[str]
    causes: frozenset[str]
    #: Resource selectors: exact ids (no glob characters) are looked up, the rest matched.
    exact_ids: frozenset[str]
    patterns: tuple[re.Pattern[str], ...]
    scopes: tuple[str, ...]
    wildcard: bool = False  # a resource pattern with * ? or [..]

    def covers_by_wildcard(self, rid: str) -> bool:
        """The resource selectors that cannot be looked up: scopes and glob patterns."""
        return rid.startswith(self.scopes) or any(p.fullmatch(rid) for p in self.patterns)

    def expired(self, as_of: datetime) -> bool:
        return self.ends_at is not None and as_of >= self.ends_at

    def describe(self) -> dict[str, Any]:
        """What reports show next to an exempt finding."""
        doc = {"id": self.id, "category": self.category, "justification": self.justification,
               "owner": self.owner, "ticket": self.ticket, "expiresOn": self.expires_on}
        return {k: v for k, v in doc.items() if v}


@dataclass(frozen=True, slots=True)
class ExemptionFile:
    path: str
    sha256: str
    exemptions: tuple[Exemption, ...]


def load(path: Path) -> ExemptionFile:
    """Read and validate an exemptions file; raise InputError naming file and JSON pointer."""
    label = str(path)
    doc, digest = read_written_json(path)
    problems = schema_problems(Draft202012Validator(exemptions_schema()), doc, label)
    entries: list[Exemption] = []
    if not problems:
        seen: set[str] = set()
        for i, raw in enumerate(doc["exemptions"]):
            if raw["id"] in seen:
                problems.append(Problem(label, f"/exemptions/{i}/id", f"duplicate exemption id {raw['id']!r}"))
            seen.add(raw["id"])
            try:
                entries.append(_compile(raw))
            except ValueError as exc:
                problems.append(Problem(label, f"/exemptions/{i}/expiresOn", str(exc)))
    if problems:
        raise InputError(problems)
    return ExemptionFile(label, digest, tuple(entries))


def _compile(raw: dict[str, Any]) -> Exemption:
    expires = raw.get("expiresOn")
    return Exemption(
        id=raw["id"], category=raw["category"], justification=raw["justification"], owner=raw["owner"],
        ticket=raw.get("ticket", ""), expires_on=expires, ends_at=_end_of(expires) if expires else None,
        policies=frozenset(p.lower() for p in raw.get("policies", ())),
        causes=frozenset(raw.get("causes", ())),
        exact_ids=frozenset(p.lower() for p in raw.get("resources", ()) if not _GLOB.search(p)),
        patterns=tuple(re.compile(fnmatch.translate(p.lower())) for p in raw.get("resources", ()) if _GLOB.search(p)),
        scopes=tuple(s.lower().rstrip("/") + "/" for s in raw.get("scopes", ())),
        wildcard=any(c in p for p in raw.get("resources", ()) for c in "*?["),
    )


def _end_of(text: str) -> datetime:
    """A date is valid through the end of that day (UTC); a date-time until that instant."""
    try:
        if "T" not in text:
            return datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC) + timedelta(days=1)
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a valid date: {exc}") from None


class _Index:
    """Exemptions by policy selector (`p:` id or `c:` cause), then by exact resource id.

    A finding is compared only with the exemptions that name its policy or cause, and of those only
    the scoped or wildcard ones are matched; so applying is linear in findings, not findings x
    exemptions. Matches come back in file order (the first active one decides).
    """

    def __init__(self, entries: tuple[Exemption, ...]) -> None:
        self.entries = entries
        self.exact: dict[tuple[str, str], list[int]] = {}
        self.wildcard: dict[str, list[int]] = {}
        for position, entry in enumerate(entries):
            for selector in [f"p:{p}" for p in entry.policies] + [f"c:{c}" for c in entry.causes]:
                for rid in entry.exact_ids:
                    self.exact.setdefault((selector, rid), []).append(position)
                if entry.patterns or entry.scopes:
                    self.wildcard.setdefault(selector, []).append(position)
        # One regex per selector that any of its wildcards would match: most ids fail it at once.
        self.screen = {selector: re.compile("|".join(
            [p.pattern for i in positions for p in entries[i].patterns]
            + [re.escape(scope) + ".*" for i in positions for scope in entries[i].scopes]), re.DOTALL)
            for selector, positions in self.wildcard.items()}

    def matches(self, finding: Finding) -> list[Exemption]:
        rid = finding.resource_id.lower()
        found: set[int] = set()
        for selector in (f"p:{finding.policy_id.lower()}", f"c:{finding.cause}"):
            found.update(self.exact.get((selector, rid), ()))
            screen = self.screen.get(selector)
            if screen is not None and screen.fullmatch(rid):
                found.update(i for i in self.wildcard[selector] if self.entries[i].covers_by_wildcard(rid))
        return [self.entries[i] for i in sorted(found)]


def apply(findings: Sequence[Finding], exemptions: ExemptionFile, as_of: datetime,
          policy_ids: Collection[str] = ()) -> dict[str, Any]:
    """Exempt what an active exemption covers; return the per-exemption account for results.json (with a
    warning for an exemption naming policy ids that none of `policy_ids`, the scan's policies, has)."""
    entries = exemptions.exemptions
    index = _Index(entries)
    exempted: Counter[str] = Counter()
    lapsed: Counter[str] = Counter()
    judged = {pid.lower() for pid in policy_ids}
    for finding in with_status(findings, EXEMPTIBLE):  # each status is read before its finding is exempted
        matches = index.matches(finding)
        if not matches:
            continue
        active = next((e for e in matches if not e.expired(as_of)), None)
        if active is not None:
            finding.annotate("verdict", finding.status)
            finding.annotate("exemption", active.describe())
            finding.status = EXEMPT
            exempted[active.id] += 1
        else:
            gone = matches[0]
            finding.annotate("expiredExemption", gone.describe())
            finding.evidence = (*finding.evidence,
                                f"exemption {gone.id} expired on {gone.expires_on}; the finding counts again")
            lapsed[gone.id] += 1
    return {
        "file": exemptions.path,
        "sha256": exemptions.sha256,
        "entries": [{**e.describe(), "expired": e.expired(as_of), "exempted": exempted[e.id],
                     "noLongerExempted": lapsed[e.id],
                     "warnings": warnings(e, exempted[e.id], judged)} for e in entries],
    }


def warnings(exemption: Exemption, exempted: int, judged: set[str]) -> list[str]:
    """What a reviewer should know about an exemption: no expiry, a wildcard that exempts a lot, or policy ids no
    policy of the scan has (a typo, or a policy since renamed: the waiver it was meant to be does nothing)."""
    out = [] if exemption.expires_on else ["has no expiry date (expiresOn), so it exempts for ever"]
    if exemption.wildcard and exempted > WIDE_EXEMPTION:
        out.append(f"a wildcard resource pattern exempts {exempted} findings (more than {WIDE_EXEMPTION})")
    unknown = sorted(p.upper() for p in exemption.policies - judged)
    if unknown and judged:
        out.append(f"names {', '.join(unknown)}, which no policy of this scan has, so it exempts nothing there")
    return out
