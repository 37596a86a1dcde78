"""`scan --shard-name` and `merge`: shards split by subscription merge into exactly the reports of one scan.

The oracle is the scanner itself run once on all the shards' snapshot files: every output of the
merge must equal it byte for byte once the run's times, the junit duration and the shard lines are
masked (shard_helpers.masked). Every mismatch of shards is refused with exit 2, naming the files.
"""

from __future__ import annotations

import json
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backup_preflight import demo, scan
from backup_preflight.policy.loader import bundled_policy_dir, load_policies
from backup_preflight.report import outputs
from backup_preflight.results import Gate
from backup_preflight.review import merge
from results_helpers import findings_of
from shard_helpers import OUTPUTS, masked, write_shards
from test_schemas import problems

from cli_helpers import run

SCOPE_ERROR = {"scope": "/subscriptions/{sub}", "table": "instanceviews", "status": "Forbidden",
               "message": "AuthorizationFailed: no read access to virtualMachines/instanceView"}


def scan_shards(paths: list[Path], folder: Path, *extra: str) -> list[Path]:
    results = []
    for path in paths:
        out = folder / f"out-{path.stem}"
        done = run("scan", "--snapshot", path, "--shard-name", f"{path.stem} of {folder.name}", "--output-dir", out,
                   "--ci", "none", "--fail-on", "never", *extra)
        assert done.returncode in (0, 3), done.stderr
        results.append(out / "results.json")
    return results


def single_scan(paths: list[Path], out: Path, *extra: str) -> int:
    done = run("scan", *(a for p in paths for a in ("--snapshot", p)), "--output-dir", out, "--ci", "none", *extra)
    assert done.returncode in (0, 1, 3), done.stderr
    return done.returncode


@pytest.fixture(scope="module")
def demo_shards(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], list[Path]]:
    """The demo estate in its three subscriptions, one shard each; the second could not read instance views."""
    folder = tmp_path_factory.mktemp("demo-shards")
    paths = write_shards(demo.demo_document(), 3, folder)
    doc = json.loads(paths[1].read_text())
    doc["errors"] = [{**SCOPE_ERROR, "scope": f"/subscriptions/{doc['scope']['subscriptions'][0]}"}]
    paths[1].write_text(json.dumps(doc))
    return paths, scan_shards(paths, folder)


@pytest.mark.parametrize(("vms", "subscriptions", "shards"), [(60, 3, 3), (150, 4, 4), (150, 4, 2)])
def test_merged_shards_write_exactly_the_reports_of_one_scan(tmp_path: Path, vms: int, subscriptions: int,
                                                            shards: int) -> None:
    whole = demo.generate(vms, seed=vms, subscriptions=subscriptions)
    paths = write_shards(whole, shards, tmp_path)
    results = scan_shards(paths, tmp_path)
    expected = single_scan(paths, tmp_path / "single")
    done = run("merge", *results, "--output-dir", tmp_path / "merged", "--ci", "none")
    assert done.returncode == expected, done.stderr
    for name in OUTPUTS:
        assert masked(tmp_path / "merged", name) == masked(tmp_path / "single", name), name
    merged = json.loads((tmp_path / "merged" / "results.json").read_text())
    assert [s["name"] for s in merged["scan"]["shards"]] == [f"shard-{i} of {tmp_path.name}" for i in range(shards)]
    assert merged["coverage"]["vms"] == vms and problems("results", merged) == []
    # The split lost nothing against the unsplit snapshot either (only its file and hash differ).
    (tmp_path / "whole.json").write_text(json.dumps(whole))
    single_scan([tmp_path / "whole.json"], tmp_path / "whole")
    unsplit = json.loads((tmp_path / "whole" / "results.json").read_text())
    for key in ("findings", "summary", "coverage", "jobDiagnosis", "gate"):
        assert merged[key] == unsplit[key], key


def test_a_shard_is_marked_partial_in_every_report(demo_shards: tuple[list[Path], list[Path]]) -> None:
    _, results = demo_shards
    out = results[0].parent
    doc = json.loads(results[0].read_text())
    name = f"shard-0 of {out.parent.name}"
    assert doc["scan"]["shard"]["name"] == name and problems("results", doc) == []
    assert f"Partial run: shard {name}" in (out / "summary.md").read_text()
    assert f"<dt>Shards</dt><dd>Partial run: shard {name}" in (out / "report.html").read_text()
    assert f'<property name="shards" value="Partial run: shard {name}' in (out / "junit.xml").read_text()


def test_scope_errors_of_every_shard_make_the_union_incomplete(tmp_path: Path,
                                                               demo_shards: tuple[list[Path], list[Path]]) -> None:
    paths, results = demo_shards
    expected = single_scan(paths, tmp_path / "single")
    done = run("merge", *results, "--output-dir", tmp_path / "merged", "--ci", "none")
    assert done.returncode == expected == 3
    scope = json.loads(paths[1].read_text())["errors"][0]["scope"]
    for name in ("results.json", "report.html", "junit.xml", "summary.md"):
        assert scope in (tmp_path / "merged" / name).read_text(), name
        assert masked(tmp_path / "merged", name) == masked(tmp_path / "single", name), name
    assert scope in done.stdout


@pytest.mark.parametrize(("gate", "expected"), [((), 1), (("--fail-on", "never"), 0),
                                                (("--fail-on", "critical"), 0), (("--strict",), 1)])
def test_the_merge_gates_with_its_own_flags_like_scan(tmp_path: Path, gate: tuple[str, ...], expected: int) -> None:
    """The shards ran with --fail-on never (a matrix job that only collects); the merge decides."""
    paths = write_shards(demo.generate(60, seed=3, subscriptions=2), 2, tmp_path)
    results = scan_shards(paths, tmp_path)
    assert single_scan(paths, tmp_path / "single", *gate) == expected
    done = run("merge", *results, "--output-dir", tmp_path / "merged", "--ci", "none", *gate)
    assert done.returncode == expected, done.stderr
    for name in OUTPUTS:
        assert masked(tmp_path / "merged", name) == masked(tmp_path / "single", name), name


def edited(path: Path, folder: Path, change: Any) -> Path:
    """A copy of a shard's results.json with `change(doc)` applied."""
    doc = json.loads(path.read_text())
    change(doc)
    copy = folder / f"{path.parent.name}-edited.json"
    copy.write_text(json.dumps(doc))
    return copy


def refusals(*paths: Path) -> list[str]:
    return [str(p) for p in merge.check_shards([merge.load_shard(path) for path in paths])]


def test_shards_of_different_tools_policies_or_parameters_are_refused(
        tmp_path: Path, demo_shards: tuple[list[Path], list[Path]]) -> None:
    paths, (a, b, c) = demo_shards
    assert refusals(a, b, c) == []
    tzdata = edited(b, tmp_path, lambda d: d["tool"]["libraries"].update(tzdata="2020.1"))
    assert any(str(tzdata) in p and "/tool" in p and str(a) in p for p in refusals(a, tzdata))
    other = scan_shards([paths[1]], tmp_path / "param", "--param", "VMBK-PERF-001.maximumCpuPercent=80")[0]
    found = refusals(a, other)
    assert any("policy set" in p for p in found) and any("/scan/parameters" in p and str(other) in p for p in found)
    fewer = tmp_path / "policies"
    fewer.mkdir()
    for policy in json.loads(a.read_text())["policies"][1:]:
        (fewer / policy["file"]).write_text((bundled_policy_dir() / policy["file"]).read_text())
    subset = scan_shards([paths[1]], tmp_path / "subset", "--policies", fewer)[0]
    assert any("different policies" in p and str(subset) in p for p in refusals(a, subset))
    no_metrics = json.loads(paths[2].read_text())
    del no_metrics["tables"]["metrics"]
    (tmp_path / "nometrics.json").write_text(json.dumps(no_metrics))
    partial = scan_shards([tmp_path / "nometrics.json"], tmp_path / "nometrics")[0]
    assert any("tables collected" in p and "metrics" in p for p in refusals(a, partial))


def test_overlapping_unnamed_and_reviewed_shards_are_refused(
        tmp_path: Path, demo_shards: tuple[list[Path], list[Path]]) -> None:
    paths, (a, b, _) = demo_shards
    again = edited(a, tmp_path, lambda d: d["scan"]["shard"].update(name="again"))
    assert any("20 VMs are also in" in p and str(a) in p and str(again) in p for p in refusals(a, again))
    same = edited(b, tmp_path, lambda d: d["scan"]["shard"].update(name=json.loads(a.read_text())["scan"]["shard"]
                                                                   ["name"]))
    assert any("shard name" in p and str(same) in p and str(a) in p for p in refusals(a, same))
    unnamed = edited(b, tmp_path, lambda d: d["scan"].pop("shard"))
    assert any("not a shard" in p and str(unnamed) in p for p in refusals(a, unnamed))
    ex = tmp_path / "ex.json"
    ex.write_text(json.dumps({"exemptions": [{"id": "EX-1", "policies": ["VMBK-AGENT-001"], "resources": ["*"],
                                              "category": "waiver", "justification": "appliance without an agent",
                                              "owner": "ops", "expiresOn": "2099-01-01"}]}))
    reviewed = scan_shards([paths[1]], tmp_path / "ex", "--exemptions", ex)[0]
    assert any("--exemptions" in p and str(reviewed) in p for p in refusals(a, reviewed))


def test_a_schedule_group_that_spans_shards_is_refused_and_would_be_wrong(
        tmp_path: Path, demo_shards: tuple[list[Path], list[Path]]) -> None:
    """Grouped by resource group name alone, the demo's rg-web-02 has VMs in all three subscriptions."""
    paths, _ = demo_shards
    by_name = ("--param", "VMBK-SCHED-001.groupKey=resourceGroup", "--param", "VMBK-SCHED-001.maximumPerSlot=2")
    results = scan_shards(paths, tmp_path, *by_name)
    found = refusals(*results)
    assert any("groups of VMBK-SCHED-001 also have members in" in p and re.search(r"/ \w+day 02:00 utc", p)
               for p in found), found
    # Had it been merged, the shards' verdicts would not be one scan's: each judged part of the group.
    single_scan(paths, tmp_path / "single", *by_name)
    one = {(f["resourceId"], f["status"], f["message"]) for f in _sched(tmp_path / "single" / "results.json")}
    parts = {(f["resourceId"], f["status"], f["message"]) for r in results for f in _sched(r)}
    assert one != parts
    done = run("merge", *results, "--output-dir", tmp_path / "merged")
    assert done.returncode == 2 and "VMBK-SCHED-001" in done.stderr and not (tmp_path / "merged").exists()


def test_the_default_schedule_groups_stay_inside_a_subscription(demo_shards: tuple[list[Path], list[Path]]) -> None:
    """placementGroup starts with the subscription: every recorded group key names its shard's subscription."""
    paths, results = demo_shards
    for path, result in zip(paths, results, strict=True):
        (sub,) = json.loads(path.read_text())["scope"]["subscriptions"]
        keys = json.loads(result.read_text())["scan"]["shard"]["groups"]["VMBK-SCHED-001"]
        assert keys and all(key[0].startswith(sub.lower() + "/") for key in keys)


def _sched(results: Path) -> list[dict[str, Any]]:
    return [f for f in findings_of(json.loads(results.read_text()))
            if f["policyId"] == "VMBK-SCHED-001" and f["status"] != "notApplicable"]


def test_merge_input_errors_are_one_line_and_write_nothing(tmp_path: Path,
                                                           demo_shards: tuple[list[Path], list[Path]]) -> None:
    _, (a, b, _) = demo_shards
    bad = tmp_path / "bad.json"
    bad.write_text('{"scan": {}}')
    done = run("merge", a, bad, "--output-dir", tmp_path / "out")
    assert done.returncode == 2 and str(bad) in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()
    for pointer, change in [("/findings/3", lambda d: d["findings"][3].update(status="fine")),
                            ("/scan/startedAt", lambda d: d["scan"].pop("startedAt")),
                            ("/coverage/tables", lambda d: d["coverage"].update(tables=[])),
                            ("/scan/shard/groups/VMBK-SCHED-001/0",
                             lambda d: d["scan"]["shard"]["groups"]["VMBK-SCHED-001"].__setitem__(0, "x")),
                            ("/jobDiagnosis/0", lambda d: d["jobDiagnosis"][0].pop("lastFailedJob")),
                            # crashed the union's report.html (exit 4)
                            ("/scan/scope/subscriptions", lambda d: d["scan"]["scope"].update(subscriptions=None)),
                            # was read as no instant: the union's slots taken at another reference
                            ("/scan/collectedAt", lambda d: d["scan"].update(collectedAt="yesterday")),
                            ("/scan/finishedAt", lambda d: d["scan"].update(finishedAt="soon"))]:
        broken = edited(b, tmp_path, change)
        done = run("merge", a, broken, "--output-dir", tmp_path / "out")
        assert done.returncode == 2, done.stderr
        assert str(broken) in done.stderr and pointer in done.stderr and len(done.stderr.splitlines()) == 1
        assert not (tmp_path / "out").exists()


def test_exemptions_and_baseline_apply_to_the_union_as_in_one_scan(
        tmp_path: Path, demo_shards: tuple[list[Path], list[Path]]) -> None:
    """The review step runs at merge: its counts and the baseline's fixed list are about the whole estate."""
    paths, results = demo_shards
    ex = tmp_path / "ex.json"
    (sub,) = json.loads(paths[2].read_text())["scope"]["subscriptions"]
    ex.write_text(json.dumps({"exemptions": [
        {"id": "EX-1", "policies": ["VMBK-AGENT-001"], "resources": ["*"], "category": "waiver",
         "justification": "appliances without an agent", "owner": "ops", "expiresOn": "2099-01-01"},
        {"id": "EX-2", "causes": ["resource-pressure"], "scopes": [f"/subscriptions/{sub}"],
         "category": "mitigated", "justification": "batch hosts, backups moved off-peak", "owner": "ops"}]}))
    single_scan(paths[:2], tmp_path / "before", "--param", "VMBK-PERF-001.maximumCpuPercent=50")
    time.sleep(1.1)  # the masking replaces the runs' times as text: the baseline's must be another second
    base = tmp_path / "before" / "results.json"
    review = ("--exemptions", ex, "--baseline", base, "--fail-on-new")
    expected = single_scan(paths, tmp_path / "single", *review)
    done = run("merge", *results, "--output-dir", tmp_path / "merged", "--ci", "none", *review)
    assert done.returncode == expected, done.stderr
    for name in OUTPUTS:
        assert masked(tmp_path / "merged", name) == masked(tmp_path / "single", name), name
    merged = json.loads((tmp_path / "merged" / "results.json").read_text())
    marks = merged["summary"]["baseline"]
    assert marks["new"] and marks["unchanged"] and merged["scan"]["baseline"]["fixed"]
    assert merged["summary"]["exempt"]["waiver"] and merged["summary"]["exempt"]["mitigated"]
    assert problems("results", merged) == []


@settings(max_examples=8, deadline=None)
@given(subscriptions=st.integers(1, 5), seed=st.integers(0, 10_000), data=st.data())
def test_any_split_by_subscription_in_any_order_merges_exactly(subscriptions: int, seed: int,
                                                               data: st.DataObject) -> None:
    """In process: subscriptions dealt into 1-4 shards, the shards merged in a random order, always one scan's
    reports (one scan of the shard files in that same order)."""
    shards = data.draw(st.integers(1, min(subscriptions, 4)), label="shards")
    order = data.draw(st.permutations(range(shards)), label="order")
    policy_set = load_policies([bundled_policy_dir()])
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = [write_shards(demo.generate(8 * subscriptions, seed, subscriptions), shards, folder)[i] for i in order]
        results = []
        for path in paths:
            shard = scan.run_scan(scan.snapshot_source([path]), policy_set, Gate(), shard=path.stem)
            outputs.write_all(shard, folder / path.stem)
            results.append(merge.load_shard(folder / path.stem / "results.json"))
        assert merge.check_shards(results) == []
        outputs.write_all(scan.run_scan(scan.snapshot_source(paths), policy_set, Gate()), folder / "single")
        outputs.write_all(merge.merge(results, Gate()), folder / "merged")
        for name in OUTPUTS:
            assert masked(folder / "merged", name) == masked(folder / "single", name), name


def _collected(paths: list[Path], *moments: str) -> None:
    for path, moment in zip(paths, moments, strict=True):
        doc = json.loads(path.read_text())
        doc["collectedAt"] = moment
        path.write_text(json.dumps(doc))


def test_shards_collected_apart_on_one_side_of_daylight_saving_merge_exactly(tmp_path: Path) -> None:
    """A scan of the union takes every slot at the latest collectedAt; minutes apart, no slot moves."""
    paths = write_shards(demo.demo_document(), 3, tmp_path)
    _collected(paths, "2026-11-24T06:07:00Z", "2026-11-24T05:41:00Z", "2026-11-24T06:29:00Z")
    results = scan_shards(paths, tmp_path)
    assert refusals(*results) == []
    expected = single_scan(paths, tmp_path / "single")
    done = run("merge", *results, "--output-dir", tmp_path / "merged", "--ci", "none")
    assert done.returncode == expected, done.stderr
    for name in OUTPUTS:
        assert masked(tmp_path / "merged", name) == masked(tmp_path / "single", name), name


def test_a_shard_collected_across_a_daylight_saving_change_is_refused(tmp_path: Path) -> None:
    """Europe leaves summer time on 2026-10-25: a shard collected the evening before takes its European
    slots an hour earlier than one scan of all shards, which takes them at the latest collectedAt."""
    paths = write_shards(demo.demo_document(), 3, tmp_path)
    _collected(paths, "2026-10-24T18:00:00Z", "2026-10-25T03:00:00Z", "2026-10-25T03:10:00Z")
    results = scan_shards(paths, tmp_path)
    found = refusals(*results)
    assert len(found) == 1 and str(results[0]) in found[0], found
    assert all(zone in found[0] for zone in ("GMT Standard Time", "Romance Standard Time", "W. Europe Standard Time"))
    assert "Pacific" not in found[0] and "UTC," not in found[0]  # still 24 October there; UTC never moves
    # Had it been merged, shard 0's groups would not be the union's: one scan puts its VMs in other slots.
    single_scan(paths, tmp_path / "single", "--shard-name", "everything")
    (sub,) = json.loads(paths[0].read_text())["scope"]["subscriptions"]
    union = json.loads((tmp_path / "single" / "results.json").read_text())["scan"]["shard"]["groups"]
    own = json.loads(results[0].read_text())["scan"]["shard"]["groups"]["VMBK-SCHED-001"]
    assert own != [key for key in union["VMBK-SCHED-001"] if key[0].startswith(sub.lower())]


def test_the_union_takes_its_slots_at_the_latest_instant_not_the_greatest_text() -> None:
    """00:30 at +02:00 on the 29th is 22:30 UTC on the 28th, before 23:45Z; as text it looked later, so the shard
    collected last (in Berlin already the 29th, the day daylight saving starts) was refused, not the earlier one."""
    from types import SimpleNamespace

    from backup_preflight.review.merge import _moved_slots

    def shard(collected: str, path: str) -> Any:
        return SimpleNamespace(path=path, scan={"collectedAt": collected, "shard": {
            "slotReference": collected, "timeZones": ["W. Europe Standard Time"]}})

    moved = _moved_slots([shard("2026-03-29T00:30:00+02:00", "a.json"), shard("2026-03-28T23:45:00Z", "b.json")])
    assert [p.file for p in moved] == ["a.json"]


def test_the_union_starts_at_the_earliest_instant_and_ends_at_the_latest(
        tmp_path: Path, demo_shards: tuple[list[Path], list[Path]]) -> None:
    """By instant, not by text: 03:00+02:00 (01:00 UTC) is before 02:00Z though its text is greater."""
    _, (a, b, c) = demo_shards
    early = edited(a, tmp_path, lambda d: d["scan"].update(startedAt="2026-12-01T03:00:00+02:00",
                                                           finishedAt="2026-12-01T03:10:00+02:00"))
    late = edited(b, tmp_path, lambda d: d["scan"].update(startedAt="2026-12-01T02:00:00Z",
                                                          finishedAt="2026-12-01T02:05:00Z"))
    last = edited(c, tmp_path, lambda d: d["scan"].update(startedAt="2026-12-01T01:30:00Z",
                                                          finishedAt="2026-12-01T01:40:00Z"))
    done = run("merge", early, late, last, "--output-dir", tmp_path / "out", "--fail-on", "never")
    assert done.returncode == 3, done.stderr  # the demo's scope errors: incomplete, as one scan of it is
    scan_block = json.loads((tmp_path / "out" / "results.json").read_text())["scan"]
    assert (scan_block["startedAt"], scan_block["finishedAt"]) == ("2026-12-01T03:00:00+02:00",
                                                                   "2026-12-01T02:05:00Z")


def test_a_shard_time_without_an_offset_is_utc_in_every_report(
        tmp_path: Path, demo_shards: tuple[list[Path], list[Path]]) -> None:
    """A start with an offset and an end without one (UTC, as every time the tool reads) made junit.xml's
    duration subtract an aware time from a naive one: exit 4."""
    _, (a, b, c) = demo_shards
    first = edited(a, tmp_path, lambda d: d["scan"].update(startedAt="2026-12-01T01:00:00Z",
                                                           finishedAt="2099-12-01T01:00:30"))  # the latest end
    done = run("merge", first, b, c, "--output-dir", tmp_path / "out", "--fail-on", "never")
    assert done.returncode == 3, done.stderr  # the demo's scope errors: incomplete, as one scan of it is
    assert 'time="' in (tmp_path / "out" / "junit.xml").read_text()
