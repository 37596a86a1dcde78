"""The scan pipeline: source → snapshot → estate → engine → results, in that order only."""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable, Iterable, Sequence
from contextlib import closing
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from backup_preflight import demo, heap, row_lines, snapshot
from backup_preflight.estate import build_estate
from backup_preflight.estate.index import VM_TYPE
from backup_preflight.estate.parts import PART_VMS, Split, no_room, read_split
from backup_preflight.gcpause import gc_paused
from backup_preflight.judging import Judged, Reach, judge, judge_in_parts
from backup_preflight.policy.engine import evaluate
from backup_preflight.policy.loader import PolicySet
from backup_preflight.results import Gate, ScanResult, exit_code, nothing_assessed, summarize
from backup_preflight.review import Review
from backup_preflight.review import baseline as baseline_mod
from backup_preflight.review.jobs import diagnose
from backup_preflight.review.shard import shard_record
from backup_preflight.service_tags import ServiceTags
from backup_preflight.timestamps import parse_instant
from backup_preflight.whatif import gate as gate_mod
from backup_preflight.whatif.parse import WhatIf


@dataclass(slots=True)
class Source:
    """Where the rows come from, and the evidence of exactly which bytes were read."""

    kind: str  # demo | snapshot | live
    snapshot: snapshot.Snapshot
    files: list[dict[str, str]] = field(default_factory=list)
    #: Microsoft's service-tag prefixes (`--service-tags`), recorded with the file's hash.
    service_tags: ServiceTags | None = None
    #: A snapshot file of more than `part_vms` VMs, read into parts (estate/parts.py); `snapshot` is its header.
    split: Split | None = None
    part_vms: int = PART_VMS
    #: Parts judged at once, each in a child process when more than one (`scan --jobs`).
    jobs: int = 1

    @property
    def sha256(self) -> str:
        return self.snapshot.sha256

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "sha256": self.sha256, "files": self.files}


def demo_source() -> Source:
    doc = demo.demo_document()
    data = msgspec.json.encode(doc)
    snap = snapshot.from_document(doc, "<demo>")
    snap.sources = [snapshot.SourceFile("<built-in demo estate>", hashlib.sha256(data).hexdigest(), "demo")]
    return Source("demo", snap)


def snapshot_source(paths: list[Path], part_vms: int = PART_VMS, jobs: int = 1) -> Source:
    """The snapshot files, merged; one file laid out a row per line with more than `part_vms` VMs (not 0)
    stays split into parts, to be judged a part at a time (and, with more than one job, a large one is read
    by two processes). Several files (an estate and the output of the guest probe), or a file in another
    layout (`az graph query` output, pretty-printed JSON), of more VMs than that are merged, set aside to the
    temporary folder as a live collection is, and judged a part at a time too."""
    split = _split(paths[0], jobs) if len(paths) == 1 and part_vms > 0 else None
    if split is None:
        snap = snapshot.load_many(paths)
        if 0 < part_vms < _vm_rows(snap):
            sources = snap.sources
            split = _set_aside(snap, str(paths[0]) if len(paths) == 1 else "the snapshots")
            split.header.sources = sources  # the files read, and their hashes, as held whole
            return _from_split("snapshot", split, part_vms)
        return Source("snapshot", snap, _files(snap))
    return _from_split("snapshot", split, part_vms)


def _split(path: Path, jobs: int) -> Split | None:
    """The file split by subscription, or None when it is not laid out a row per line."""
    try:
        with gc_paused():
            return read_split(path, jobs)
    except row_lines.NotThisLayout:
        return None


def _from_split(kind: str, split: Split, part_vms: int) -> Source:
    """The split file as a source: to be judged a part at a time when it holds more than `part_vms` VMs, else
    read whole."""
    if sum(split.vms.values()) > part_vms:
        return Source(kind, split.header, _files(split.header), split=split, part_vms=part_vms)
    with closing(split):
        snap = split.whole()
    return Source(kind, snap, _files(snap))


def _files(snap: snapshot.Snapshot) -> list[dict[str, str]]:
    return [{"path": s.path, "sha256": s.sha256, "format": s.kind} for s in snap.sources]


LIVE = "<live collection>"


def live_source(snap: snapshot.Snapshot, part_vms: int = PART_VMS) -> Source:
    """A snapshot just collected (its rows kept as text or not); its hash is of its canonical JSON, as `collect`
    would save it.

    With more VMs than `part_vms` (not 0) it is written so to an unnamed file in the temporary folder, its
    rows let go, and the file judged a part at a time as a saved snapshot would be: memory then peaks with the
    collection, not with the collected rows, the whole estate's facts and its findings at once."""
    if 0 < part_vms < _vm_rows(snap):
        split = _set_aside(snap, LIVE)
        split.header.sources = [replace(split.header.sources[0], kind="live")]
        return replace(_from_split("live", split, part_vms), files=[])  # as held whole: no file
    digest = snapshot.sha256(snap)
    snap.materialize()
    snap.sources = [snapshot.SourceFile(LIVE, digest, "live")]
    return Source("live", snap)


def _vm_rows(snap: snapshot.Snapshot) -> int:
    return sum(1 for row in snap.tables.get("resources", ()) if str(snapshot.row_head(row)[1]).lower() == VM_TYPE)


def _set_aside(snap: snapshot.Snapshot, label: str) -> Split:
    """The snapshot (collected, or merged from files) written to an unnamed temporary file and split by
    subscription; its rows are let go. `label` names it in an error."""

    def let_go() -> None:
        snap.tables.clear()
        snap.queries.clear()

    return _spilled(snapshot.pieces(snap), label, LIVE, let_go)


#: How the estate a what-if predicts is named where it is written (an error names it).
PREDICTED = "the estate the deployment would leave"


def _spilled(text: Iterable[bytes], label: str, name: str, written: Callable[[], None] = lambda: None) -> Split:
    """A snapshot's text written to an unnamed temporary file and split by subscription; `written` runs once it
    is. `label` names what is written in an error of the temporary folder, `name` the file in one of its rows."""
    try:
        spill = tempfile.TemporaryFile()  # noqa: SIM115 - the Split closes it; never named, so never left behind
    except OSError as exc:
        raise no_room(label, exc) from None
    try:
        try:
            for piece in text:
                spill.write(piece)
            spill.flush()
        except OSError as exc:
            raise no_room(label, exc) from None
        written()
        heap.give_back()
        with gc_paused():
            split = Split(snapshot.RowReader(Path(name), spill))
    except BaseException:
        spill.close()
        raise
    return split


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def run_scan(source: Source, policies: PolicySet, gate: Gate, review: Review | None = None,
             as_of: str | None = None, what_if: WhatIf | None = None, shard: str | None = None) -> ScanResult:
    """Evaluate, review (exemptions, baseline) and summarize; `as_of` replays a past run's clock.

    With `shard` (a name), the run is one part of a split estate and records what `merge` checks.

    With `what_if`, the estate judged is the one the deployment would leave, and the scan of the
    current estate is its baseline: only what the deployment introduces is new.
    """
    with gc_paused():
        return _run(source, policies, gate, review, as_of, what_if, shard)


def _run(source: Source, policies: PolicySet, gate: Gate, review: Review | None, as_of: str | None,
         what_if: WhatIf | None, shard: str | None = None) -> ScanResult:
    started = now()
    # Daylight saving of backup schedules is taken at collectedAt, else at this clock (verify passes
    # the recorded start, so a snapshot without collectedAt re-scans to the same slots).
    clock = parse_instant(as_of) or datetime.now(UTC)
    snap = source.snapshot
    if source.split is not None and what_if is None:
        with closing(source.split):  # its rows' places go once every part is judged, and their pages with them:
            judged = judge_in_parts(source.split, policies, clock, source.service_tags, source.part_vms, source.jobs)
        heap.give_back()  # 0.3 GB at 1,000,000 VMs, which may make room for a child writing reports
        return _finish(source, snap, source.split.counts, policies, gate, review, as_of, started, clock, judged,
                       shard)
    plan = None
    if what_if is not None:
        if source.split is not None:
            return _predicted_in_parts(source, policies, gate, review or Review(), as_of, started, clock, what_if,
                                       shard)
        review = replace(review or Review(), fail_on_new=True, baseline=_current_baseline(source, policies, clock))
        snap, plan = gate_mod.predict(snap, what_if)
    estate = build_estate(snap, clock, source.service_tags)
    judged = judge(estate, policies, snap.queries, groups=shard is not None)
    explain = None if plan is None else \
        lambda: {"whatIf": gate_mod.explain_new(judged.findings, gate_mod.held(estate, plan), plan)}
    counts = {name: len(rows) for name, rows in snap.tables.items()}
    return _finish(source, snap, counts, policies, gate, review, as_of, started, clock, judged, shard, explain)


def _predicted_in_parts(source: Source, policies: PolicySet, gate: Gate, review: Review, as_of: str | None,
                        started: str, clock: datetime, what_if: WhatIf, shard: str | None) -> ScanResult:
    """A what-if on a split estate: the estate the deployment would leave is written to the temporary folder a
    row at a time, as a live collection is, and judged in parts; each part gives blame what it needs of its VMs.
    Then the current estate, the baseline, is judged in parts where the plan reaches (gate.current_where_reached)."""
    split = source.split
    assert split is not None
    with closing(split):
        text, plan = gate_mod.predict_text(split, what_if)
        with closing(_spilled(text, PREDICTED, PREDICTED)) as predicted:
            judged = judge_in_parts(predicted, policies, clock, source.service_tags, source.part_vms, source.jobs,
                                    about=gate_mod.relating(plan))

        def judge_current(only: set[str] | None, beside: Sequence[Reach]) -> Judged:
            return judge_in_parts(split, policies, clock, source.service_tags, source.part_vms, source.jobs,
                                  only=only, beside=beside)
        current = gate_mod.current_where_reached(split, judged, plan, policies, judge_current)
        review = replace(review, fail_on_new=True, baseline=baseline_mod.from_findings(
            current, gate_mod.CURRENT_ESTATE, source.sha256))
    heap.give_back()
    return _finish(source, predicted.header, predicted.counts, policies, gate, review, as_of, started, clock, judged,
                   shard, lambda: {"whatIf": gate_mod.explain_new(judged.findings, lambda _: judged.about, plan)})


def _current_baseline(source: Source, policies: PolicySet, clock: datetime) -> baseline_mod.Baseline:
    """The scan of the current estate held whole, as the baseline of a what-if's prediction."""
    snap = source.snapshot
    current = evaluate(policies, build_estate(snap, clock, source.service_tags).vms, snap.queries)
    return baseline_mod.from_findings(current, gate_mod.CURRENT_ESTATE, source.sha256)


def _finish(source: Source, snap: snapshot.Snapshot, counts: dict[str, int], policies: PolicySet, gate: Gate,
            review: Review | None, as_of: str | None, started: str, clock: datetime, judged: Judged,
            shard: str | None, explain: Callable[[], dict[str, Any]] | None = None) -> ScanResult:
    """Review, summarize and record the run around what the estate and engine gave; `explain` says, once
    the review has marked them, what a what-if deployment's new findings come from."""
    findings = judged.findings
    reviewed = review.apply(findings, as_of or started, [p.id for p in policies.policies]) if review else {}
    reviewed.update(explain() if explain else {})
    coverage = {
        "vms": judged.vms,
        "policies": len(policies.policies),
        "tables": dict(sorted(counts.items())),
        "notCollected": [t for t in snapshot.KNOWN_TABLES if t not in snap.tables],
        "errors": list(snap.errors),
        "nothingAssessed": nothing_assessed(findings),
        "subscriptionsWithoutName": sorted(judged.unnamed),
    }
    summary = summarize(findings, gate)
    reference = parse_instant(snap.collected_at) or clock
    run = {
        "startedAt": started,
        "finishedAt": now(),
        "source": source.describe(),
        "scope": snap.scope,
        "collectedAt": snap.collected_at,
        "policySetSha256": policies.sha256,
        "parameters": policies.parameters(),
        **({"serviceTags": source.service_tags.describe()} if source.service_tags else {}),
        **reviewed,
        **({"shard": shard_record(shard, judged.groups, judged.zones, reference)} if shard is not None else {}),
    }
    return ScanResult(run=run, policies=policies.policies, findings=findings, coverage=coverage,
                      gate=gate, summary=summary, exit_code=exit_code(summary, coverage),
                      diagnoses=diagnose(judged.failed_jobs, findings), tags=judged.tags,
                      subscriptions=judged.subscriptions)
