"""The demo's answer key: the status a correct scan gives EVERY (policy, VM) pair of a demo estate.

The key is built from the generator's plan, not from the scanner: `default_verdicts` says what each
bundled policy concludes for a VM from the plain facts the plan decided (power, coverage of each
side source, agent, extension, protection, subnet and NSG kinds), and the schedule is recomputed here
with zoneinfo and plain counting. A scenario's `verdicts` override the default where the scenario is
the point. Every (policy, VM) pair is compared exactly, healthy VMs included: a new scenario whose
effect the defaults do not derive (a new subnet kind, say) declares its `verdicts`, and nothing else.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from backup_preflight import demo, snapshot
from backup_preflight.demo.plan import Estate, VmPlan
from backup_preflight.demo.scenarios import POLICY_BY_NAME, Scenario
from backup_preflight.estate import build_estate
from backup_preflight.policy.engine import evaluate
from backup_preflight.policy.loader import bundled_policy_dir, load_policies

SCENARIOS = {s.name: s for s in (*demo.SCENARIOS, *demo.SHOWCASE)}
POLICIES = load_policies([bundled_policy_dir()])
CAUSE_OF = {p.id: p.cause for p in POLICIES.policies}
IANA = {"UTC": "UTC", "W. Europe Standard Time": "Europe/Berlin", "Pacific Standard Time": "America/Los_Angeles",
        "GMT Standard Time": "Europe/London", "Romance Standard Time": "Europe/Paris",
        "AUS Eastern Standard Time": "Australia/Sydney"}
ACTIVE = ("Protected", "ProtectionError")
MAX_PER_SLOT = 10


def version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split("."))


# --- what each policy should conclude, from the plan --------------------------------------------------


def slots(vm: VmPlan, at: datetime) -> set[str]:
    """'Sunday 02:00' (UTC) for each snapshot start of the VM's policy in the seven days from the collection's
    local date, on the days it runs (a weekly policy's days, else every day), each on its own date."""
    spec = POLICY_BY_NAME[vm.policy]
    zone = ZoneInfo(IANA[spec.time_zone])
    first = at.astimezone(zone).date()
    hours = [spec.hour + 4 * k for k in range(4)] if spec.version == "V2-hourly" else [spec.hour]  # 4h × 16h
    days = [d for d in (first + timedelta(days=n) for n in range(7)) if not spec.days or f"{d:%A}" in spec.days]
    return {f"{datetime(d.year, d.month, d.day, h % 24, spec.minute, tzinfo=zone).astimezone(UTC):%A %H:%M}"
            for d in days for h in hours}


def crowded(estate: Estate) -> set[str]:
    """Names of protected VMs in a (group, UTC instant) with more than the maximum."""
    members: defaultdict[tuple[str, str], list[str]] = defaultdict(list)
    for vm in estate.vms:
        if vm.protected and vm.protection_state in ACTIVE:
            group = f"{vm.site.sub}/{vm.rg}/{vm.avset}" if vm.avset else f"{vm.site.sub}/{vm.rg}"
            for slot in slots(vm, estate.collected_at):
                members[group.lower(), slot].append(vm.name)
    return {name for names in members.values() if len(names) > MAX_PER_SLOT for name in names}


def network(vm: VmPlan) -> tuple[str, str]:
    """(VMBK-NET-001 for 443, VMBK-NET-002 for 8443) from the primary NIC's NSG and the subnet."""
    nic = vm.nics[0]
    subnet = {"restricted": ("fail", "fail"), "blackhole": ("fail", "fail"), "halves": ("fail", "fail"),
              "firewall": ("unknown", "unknown"),
              "private": ("pass", "pass") if vm.public_ip else ("fail", "fail")}.get(vm.subnet, ("pass", "pass"))
    nic_verdict = {"deny-storage": ("fail", "pass"), "deny-plural": ("fail", "fail"),
                   "allow-private": ("fail", "fail")}.get(nic or "", ("pass", "pass"))
    worst = ("fail", "unknown", "pass")
    net1, net2 = (min(a, b, key=worst.index) for a, b in zip(nic_verdict, subnet, strict=True))
    if nic == "allow-web" and vm.subnet == "restricted":  # the subnet NSG still denies Internet
        net1, net2 = "fail", "fail"
    return net1, net2


def default_verdicts(vm: VmPlan, crowd: set[str]) -> dict[str, str]:
    running, power = vm.power == "running", vm.power
    seen = vm.instance_view and running  # the instance view holds agent and handler facts
    on = "unknown" if power is None else None  # applies on powerState cannot be decided

    def when_running(verdict: str) -> str:
        return on or (verdict if running else "notApplicable")

    def unless_deallocated(verdict: str) -> str:
        return on or ("notApplicable" if power == "deallocated" else verdict)

    agent_ok = version(vm.agent_version) >= version("2.2.53.1" if vm.os == "Linux" else "2.7.41491.1010")
    protected = vm.protected and vm.protection_state in ACTIVE
    verdicts = {
        "VMBK-AGENT-001": agent_provisioned(vm),
        "VMBK-AGENT-002": when_running("unknown" if not seen else "pass" if vm.agent == "ready" else "fail"),
        "VMBK-AGENT-003": when_running("unknown" if not seen or vm.agent == "absent"
                                       else "pass" if agent_ok else "fail"),
        "VMBK-EXT-004": ("notApplicable" if vm.os != "Windows" else when_running(
            "unknown" if not vm.guestfacts else "pass" if vm.provider_service == "Automatic" else "fail")),
        "VMBK-POWER-001": "unknown" if power is None else "fail" if power in ("stopped", "stopping") else "pass",
        "VMBK-PROT-001": "pass" if protected else "fail",
        "VMBK-PROT-002": ("notApplicable" if not protected else "unknown" if vm.last_backup is None
                          else "fail" if vm.last_backup == "Failed" else "pass"),
        "VMBK-SCHED-001": "notApplicable" if not protected else "fail" if vm.name in crowd else "pass",
        "VMBK-SQL-001": ("notApplicable" if not vm.sql else "unknown" if not vm.guestfacts
                         else "pass" if vm.vss else "fail"),
        "VMBK-DHCP-001": unless_deallocated(dhcp(vm)),
    }
    pressure = {"cpu-high": ("fail", "pass"), "memory-low": ("pass", "fail"), "normal": ("pass", "pass")}.get(
        vm.metrics or "", ("unknown", "unknown"))
    for pid, verdict in zip(("VMBK-EXT-001", "VMBK-EXT-002", "VMBK-EXT-003"), backup_extension(vm), strict=True):
        verdicts[pid] = when_running(verdict)
    for pid, verdict in zip(("VMBK-PERF-001", "VMBK-PERF-002"), pressure, strict=True):
        verdicts[pid] = "notApplicable" if not protected else unless_deallocated(verdict)
    net1, net2 = network(vm)
    verdicts["VMBK-NET-001"] = unless_deallocated(net1)
    verdicts["VMBK-NET-002"] = unless_deallocated(net2) if not vm.unmanaged_disk else "notApplicable"
    return verdicts


def agent_provisioned(vm: VmPlan) -> str:
    """An agent reporting a version in the instance view decides; else provisionVMAgent; else unknown."""
    if vm.instance_view and vm.agent != "absent":
        return "pass"
    if vm.os_profile:
        return "pass" if vm.provision_agent else "fail"
    return "unknown"


def backup_extension(vm: VmPlan) -> tuple[str, str, str]:
    """(EXT-001 failed state, EXT-002 handler Ready, EXT-003 handler version) on a running VM.

    Azure shows the extension as an ARM resource, as the agent's handler in the instance view, or both;
    with neither, it is not installed yet (never backed up) or the agent stopped reporting it (unknown).
    The minimum version is VMSnapshotLinux's: an installed Windows extension (VMSnapshot) has none.
    """
    arm = vm.extension is not None and vm.extension_source in ("arm", "both")
    handler = vm.extension is not None and vm.extension_source in ("handler", "both") and vm.instance_view
    if arm or handler:
        failed = "fail" if vm.extension == "Failed" else "pass"
        linux = vm.os == "Linux"
        if not handler:
            return failed, "unknown", "unknown" if linux else "notApplicable"
        current = version(vm.handler_version) >= version("1.0.91.0")
        return (failed, "pass" if vm.handler_ready else "fail",
                ("pass" if current else "fail") if linux else "notApplicable")
    first_pending = vm.last_backup is None and vm.protection_state in ACTIVE  # IRPending: never backed up
    backed_up = vm.protected and not first_pending and (
        vm.protection_state == "Protected" or (vm.last_backup or "Completed") == "Completed")
    verdict = "unknown" if not vm.instance_view or backed_up else "notApplicable"
    return verdict, verdict, verdict


def dhcp(vm: VmPlan) -> str:
    probe = None if not vm.guestfacts else vm.dhcp
    assignment = None if vm.assignment is None else vm.assignment == "Compliant"
    if probe is False or assignment is False:
        return "fail"
    if probe is None and assignment is None:
        return "unknown"
    return "pass"


# --- the check ---------------------------------------------------------------------------------------


def wrong_verdicts(vms: int, seed: int, subscriptions: int | None, collected_at: datetime | None) -> list[str]:
    plan = demo.plan_estate(vms, seed, subscriptions, collected_at)
    doc = demo.generate(vms, seed, subscriptions, collected_at)
    got: dict[tuple[str, str], str] = {}
    for f in evaluate(POLICIES, build_estate(snapshot.from_document(doc, "demo")).vms):
        got[f.policy_id, f.resource_name] = f.status
    crowd = crowded(plan)
    wrong = []
    for vm in plan.vms:
        scenario: Scenario = SCENARIOS[vm.scenario]
        expected = {**default_verdicts(vm, crowd), **scenario.verdicts}
        for pid in CAUSE_OF:
            if got[pid, vm.name] != expected[pid]:
                wrong.append(f"{vm.name} ({vm.scenario}, {vm.layout or 'no layout'}) {pid}: "
                             f"expected {expected[pid]}, got {got[pid, vm.name]}")
    return wrong


JULY = datetime(2026, 7, 15, 6, tzinfo=UTC)
SOUTHERN_SUMMER = datetime(2026, 1, 20, 22, tzinfo=UTC)


@pytest.mark.parametrize(("vms", "seed", "subscriptions", "collected_at"), [
    (50, 7, 3, None), (50, 7, 3, JULY), (600, 11, None, None), (600, 11, None, JULY), (300, 5, 2, SOUTHERN_SUMMER),
])
def test_every_policy_on_every_vm_matches_the_answer_key(vms: int, seed: int, subscriptions: int | None,
                                                        collected_at: datetime | None) -> None:
    assert wrong_verdicts(vms, seed, subscriptions, collected_at) == []


def test_the_key_covers_every_policy_and_both_outcomes() -> None:
    """The key is not vacuous: the demo produces pass and fail for each cause, and every status."""
    plan = demo.plan_estate(600, 11)
    crowd = crowded(plan)
    statuses = Counter(v for vm in plan.vms
                       for v in {**default_verdicts(vm, crowd), **SCENARIOS[vm.scenario].verdicts}.values())
    assert set(statuses) == {"pass", "fail", "unknown", "notApplicable"}
    assert crowd  # at least one crowded slot in winter


def test_july_moves_the_slots_the_key_expects() -> None:
    """Daylight saving changes the schedule verdicts of the same estate: the key must follow it."""
    winter, july = demo.plan_estate(600, 11), demo.plan_estate(600, 11, None, JULY)
    assert crowded(winter) != crowded(july)


@pytest.mark.parametrize("collected_at", [None, JULY])
def test_each_scenario_exercises_its_cause(collected_at: datetime | None) -> None:
    """A scenario's `expect` agrees with the key on its cause's policies, on every VM it is drawn for."""
    plan = demo.plan_estate(600, 11, None, collected_at)
    crowd = crowded(plan)
    wrong = []
    for vm in plan.vms:
        scenario = SCENARIOS[vm.scenario]
        if scenario.cause is None:
            continue
        expected = {**default_verdicts(vm, crowd), **scenario.verdicts}
        seen = {v for pid, v in expected.items() if CAUSE_OF[pid] == scenario.cause}
        ok = {"fail": "fail" in seen, "unknown": "unknown" in seen and "fail" not in seen,
              "pass": "fail" not in seen}[scenario.expect]
        if not ok:
            wrong.append(f"{vm.name} ({scenario.name}): {scenario.expect} for {scenario.cause}, key says {seen}")
    assert wrong == []
