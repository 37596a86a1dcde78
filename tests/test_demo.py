"""The synthetic estate: deterministic, loadable, referentially whole, and showing every failure mode.

Assertions read the generated rows (not the generator's plans) wherever a scanner would, so a demo
that stops containing a failure mode fails here rather than silently thinning the report.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import pytest

from backup_preflight import demo, snapshot

VM = "microsoft.compute/virtualmachines"
ITEM = "microsoft.recoveryservices/vaults/backupfabrics/protectioncontainers/protecteditems"
POLICY = "microsoft.recoveryservices/vaults/backuppolicies"
IANA = {"UTC": "UTC", "W. Europe Standard Time": "Europe/Berlin", "Pacific Standard Time": "America/Los_Angeles",
        "GMT Standard Time": "Europe/London", "Romance Standard Time": "Europe/Paris",
        "AUS Eastern Standard Time": "Australia/Sydney"}


class Estate:
    """Case-insensitive views of a snapshot document, the way the estate stage joins rows."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.tables = doc["tables"]

    def of_type(self, rtype: str) -> list[dict[str, Any]]:
        table = snapshot.table_for_type(rtype)
        return [r for r in self.tables[table] if r["type"] == rtype]

    def by_id(self, rtype: str) -> dict[str, dict[str, Any]]:
        return {r["id"].lower(): r for r in self.of_type(rtype)}

    @cached_property
    def vms(self) -> dict[str, dict[str, Any]]:
        return self.by_id(VM)

    @cached_property
    def nics(self) -> dict[str, dict[str, Any]]:
        return self.by_id("microsoft.network/networkinterfaces")

    @cached_property
    def nsgs(self) -> dict[str, dict[str, Any]]:
        return self.by_id("microsoft.network/networksecuritygroups")

    @cached_property
    def route_tables(self) -> dict[str, dict[str, Any]]:
        return self.by_id("microsoft.network/routetables")

    @cached_property
    def subnets(self) -> dict[str, dict[str, Any]]:
        return {s["id"].lower(): s for vnet in self.of_type("microsoft.network/virtualnetworks")
                for s in vnet["properties"]["subnets"]}

    @cached_property
    def items(self) -> dict[str, dict[str, Any]]:
        """Active protected items (the ones naming a policy) by the VM id they protect."""
        return {r["properties"]["sourceResourceId"].lower(): r for r in self.of_type(ITEM)
                if "policyId" in r["properties"]}

    @cached_property
    def policies(self) -> dict[str, dict[str, Any]]:
        return self.by_id(POLICY)

    def side(self, table: str) -> dict[str, list[dict[str, Any]]]:
        rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in self.tables[table]:
            rows[row["id"].lower()].append(row)
        return rows

    def vm_nics(self, vm: dict[str, Any]) -> list[dict[str, Any]]:
        return [self.nics[n["id"].lower()] for n in vm["properties"]["networkProfile"]["networkInterfaces"]]

    def nic_subnet(self, nic: dict[str, Any]) -> dict[str, Any]:
        return self.subnets[nic["properties"]["ipConfigurations"][0]["properties"]["subnet"]["id"].lower()]

    def nsg_of(self, holder: dict[str, Any]) -> dict[str, Any] | None:
        ref = holder["properties"].get("networkSecurityGroup")
        return self.nsgs[ref["id"].lower()] if ref else None

    def route_table_of(self, subnet: dict[str, Any]) -> dict[str, Any] | None:
        ref = subnet["properties"].get("routeTable")
        return self.route_tables[ref["id"].lower()] if ref else None

    def power(self, vm: dict[str, Any]) -> str | None:
        extended = vm["properties"].get("extended")
        return extended["instanceView"]["powerState"]["code"] if extended else None

    def policy_of(self, vm: dict[str, Any]) -> dict[str, Any] | None:
        item = self.items.get(vm["id"].lower())
        return self.policies[item["properties"]["policyId"].lower()] if item else None


def outbound_rules(nsg: dict[str, Any] | None) -> list[dict[str, Any]]:
    if nsg is None:
        return []
    return [r["properties"] for r in nsg["properties"]["securityRules"]
            if r["properties"]["direction"] == "Outbound"]


def ports(rule: dict[str, Any]) -> list[str]:
    return [rule["destinationPortRange"]] if "destinationPortRange" in rule else rule["destinationPortRanges"]


def destinations(rule: dict[str, Any]) -> list[str]:
    if "destinationAddressPrefix" in rule:
        return [rule["destinationAddressPrefix"]]
    return rule["destinationAddressPrefixes"]


def denies_web(nsg: dict[str, Any] | None) -> bool:
    return any(r["access"] == "Deny" and ({"443", "*"} & set(ports(r))) and r["priority"] < 65000
               and {"Storage", "Internet", "*", "0.0.0.0/1"} & set(destinations(r)) for r in outbound_rules(nsg))


def local_starts(policy: dict[str, Any]) -> list[tuple[int, int]]:
    """(hour, minute) of each snapshot start of a day, in the policy's zone."""
    schedule = policy["properties"]["schedulePolicy"]
    if "hourlySchedule" in schedule:
        hourly = schedule["hourlySchedule"]
        start = hourly["scheduleWindowStartTime"]
        return [((int(start[11:13]) + k * hourly["interval"]) % 24, int(start[14:16]))
                for k in range(24) if k * hourly["interval"] < hourly["scheduleWindowDuration"]]
    start = (schedule.get("dailySchedule") or schedule.get("weeklySchedule") or schedule)["scheduleRunTimes"][0]
    return [(int(start[11:13]), int(start[14:16]))]


def utc_slots(policy: dict[str, Any], collected_at: str) -> list[str]:
    """The UTC instants of a policy's starts on the collection's local date, straight from zoneinfo."""
    zone = ZoneInfo(IANA[policy["properties"]["timeZone"]])
    day = datetime.fromisoformat(collected_at.replace("Z", "+00:00")).astimezone(zone)
    return [f"{datetime(day.year, day.month, day.day, h, m, tzinfo=zone).astimezone(UTC):%H:%M}"
            for h, m in local_starts(policy)]


def week_slots(policy: dict[str, Any], collected_at: str) -> set[str]:
    """'Saturday 02:00' for every start in the seven days from the collection's local date that the policy runs
    on (a weekly one: its scheduleRunDays, V1 beside the times, V2 in weeklySchedule), each on its own date."""
    zone = ZoneInfo(IANA[policy["properties"]["timeZone"]])
    schedule = policy["properties"]["schedulePolicy"]
    days = (schedule.get("weeklySchedule") or schedule).get("scheduleRunDays")
    first = datetime.fromisoformat(collected_at.replace("Z", "+00:00")).astimezone(zone).date()
    out = set()
    for n in range(7):
        day = first + timedelta(days=n)
        if schedule["scheduleRunFrequency"] != "Weekly" or f"{day:%A}" in days:
            out |= {f"{datetime(day.year, day.month, day.day, h, m, tzinfo=zone).astimezone(UTC):%A %H:%M}"
                    for h, m in local_starts(policy)}
    return out


def backup_hour_utc(policy: dict[str, Any], collected_at: str) -> int:
    return int(utc_slots(policy, collected_at)[0][:2])


@pytest.fixture(scope="module")
def estate() -> Estate:
    return Estate(demo.demo_document())


@pytest.fixture(scope="module")
def large() -> Estate:
    return Estate(demo.generate(2000, seed=11))


# --- determinism, size, loading -----------------------------------------------------------


def test_same_seed_gives_identical_bytes() -> None:
    assert msgspec.json.encode(demo.generate(300, seed=3)) == msgspec.json.encode(demo.generate(300, seed=3))
    assert msgspec.json.encode(demo.demo_document()) == msgspec.json.encode(demo.demo_document())


def test_different_seed_gives_a_different_estate() -> None:
    assert msgspec.json.encode(demo.generate(300, seed=3)) != msgspec.json.encode(demo.generate(300, seed=4))
    assert demo.generate(10, seed=3)["collectedAt"] != demo.generate(10, seed=4)["collectedAt"]


def test_demo_has_sixty_vms_in_three_subscriptions(estate: Estate) -> None:
    subscriptions = estate.doc["scope"]["subscriptions"]
    assert len(subscriptions) == 3
    assert len(estate.vms) == 60
    assert {vm["subscriptionId"] for vm in estate.vms.values()} == set(subscriptions)
    assert estate.doc["schemaVersion"] == 1 and estate.doc["errors"] == []


def test_snapshot_loader_accepts_the_document(estate: Estate, large: Estate) -> None:
    for doc in (estate.doc, large.doc):
        snap = snapshot.from_document(doc, "x")
        assert set(snap.tables) == set(snapshot.KNOWN_TABLES)
        assert snap.collected_at == doc["collectedAt"]


@pytest.mark.parametrize("name", ["estate.json", "estate.json.gz"])
def test_write_produces_a_loadable_snapshot(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    demo.write(60, 5, path)
    assert snapshot.load(path).tables == demo.generate(60, seed=5)["tables"]


def test_arg_rows_use_lowercase_type_and_resource_group(estate: Estate) -> None:
    for table in snapshot.GRAPH_TABLES:
        for row in estate.tables[table]:
            assert row["type"] == row["type"].lower()
            assert row["resourceGroup"] == row["resourceGroup"].lower()
            assert {"subscriptionId", "tenantId", "location", "name", "tags", "properties"} <= set(row)
    assert any(vm["id"] != vm["id"].lower() for vm in estate.vms.values())


# --- every id a row refers to resolves, compared case-insensitively ---------------------------


def dangling_references(estate: Estate) -> list[str]:
    """Every reference that does not resolve, as 'kind: id'."""
    missing: list[str] = []

    def need(kind: str, ref: str, known: dict[str, Any] | set[str]) -> None:
        if ref.lower() not in known:
            missing.append(f"{kind}: {ref}")

    gateways = estate.by_id("microsoft.network/virtualnetworkgateways")
    ipconfigs = {c["id"].lower() for owner in (*estate.nics.values(), *gateways.values())
                 for c in owner["properties"]["ipConfigurations"]}
    nats = estate.by_id("microsoft.network/natgateways")
    pips = estate.by_id("microsoft.network/publicipaddresses")
    avsets = estate.by_id("microsoft.compute/availabilitysets")
    for vm in estate.vms.values():
        for nic in vm["properties"]["networkProfile"]["networkInterfaces"]:
            need("vm->nic", nic["id"], estate.nics)
        if "availabilitySet" in vm["properties"]:
            need("vm->avset", vm["properties"]["availabilitySet"]["id"], avsets)
    for nic in estate.nics.values():
        need("nic->vm", nic["properties"]["virtualMachine"]["id"], estate.vms)
        if nic["properties"].get("networkSecurityGroup"):
            need("nic->nsg", nic["properties"]["networkSecurityGroup"]["id"], estate.nsgs)
        for config in nic["properties"]["ipConfigurations"]:
            need("nic->subnet", config["properties"]["subnet"]["id"], estate.subnets)
            if "publicIPAddress" in config["properties"]:
                need("nic->pip", config["properties"]["publicIPAddress"]["id"], pips)
    for subnet in estate.subnets.values():
        for key, known in (("networkSecurityGroup", estate.nsgs), ("routeTable", estate.route_tables),
                           ("natGateway", nats)):
            if key in subnet["properties"]:
                need(f"subnet->{key}", subnet["properties"][key]["id"], known)
    for gateway in gateways.values():
        for config in gateway["properties"]["ipConfigurations"]:
            need("gateway->subnet", config["properties"]["subnet"]["id"], estate.subnets)
            need("gateway->pip", config["properties"]["publicIPAddress"]["id"], pips)
    for subnet in estate.subnets.values():
        for config in subnet["properties"].get("ipConfigurations", ()):
            need("subnet->ipconfig", config["id"], ipconfigs)
    for pip in pips.values():
        if "ipConfiguration" in pip["properties"]:
            need("pip->ipconfig", pip["properties"]["ipConfiguration"]["id"], ipconfigs)
    for nat in nats.values():
        for ref in nat["properties"]["publicIpAddresses"]:
            need("nat->pip", ref["id"], pips)
    for avset in avsets.values():
        for ref in avset["properties"]["virtualMachines"]:
            need("avset->vm", ref["id"], estate.vms)
    vaults = {r["id"].lower() for table in estate.tables.values() for r in table
              if r.get("type") == "microsoft.recoveryservices/vaults"}
    for item in estate.of_type(ITEM):
        need("item->vm", item["properties"]["sourceResourceId"], estate.vms)
        need("item->vault", item["id"].split("/backupFabrics/")[0], vaults)
        if "policyId" in item["properties"]:  # stopped items no longer name one
            need("item->policy", item["properties"]["policyId"], estate.policies)
    for ext in estate.of_type("microsoft.compute/virtualmachines/extensions"):
        need("extension->vm", ext["id"].rsplit("/extensions/", 1)[0], estate.vms)
    for sql in estate.of_type("microsoft.sqlvirtualmachine/sqlvirtualmachines"):
        need("sql->vm", sql["properties"]["virtualMachineResourceId"], estate.vms)
    for assignment in estate.tables["guestconfigurationresources"]:
        need("assignment->vm", assignment["properties"]["targetResourceId"], estate.vms)
    for table in snapshot.SIDE_TABLES:
        for row in estate.tables[table]:
            need(f"{table}->vm", row["id"], estate.vms)
    return missing


def test_every_reference_resolves(estate: Estate, large: Estate) -> None:
    assert dangling_references(estate) == []
    assert dangling_references(large) == []


def test_references_differ_in_case_like_real_sources(estate: Estate) -> None:
    sources = [item["properties"]["sourceResourceId"] for item in estate.of_type(ITEM)]
    exact = [s for s in sources if s.lower() in estate.vms and estate.vms[s.lower()]["id"] == s]
    assert exact and len(exact) < len(sources)
    assert any(s == s.lower() for s in sources)
    assert any(p["id"].startswith("/Subscriptions/") for p in estate.policies.values())
    assert any(p["id"].startswith("/subscriptions/") for p in estate.policies.values())


# --- shared infrastructure, as in a real estate -------------------------------------------------


def test_network_is_shared_by_many_vms(large: Estate) -> None:
    vms = len(large.vms)
    assert vms == 2000
    assert len(large.nsgs) + len(large.subnets) < vms / 20
    nics_per_nsg = Counter(n["properties"]["networkSecurityGroup"]["id"].lower()
                           for n in large.nics.values() if "networkSecurityGroup" in n["properties"])
    assert max(nics_per_nsg.values()) > 100
    assert 4 < sum(len(rows) for rows in large.tables.values()) / vms < 10


def test_large_estate_is_mostly_healthy() -> None:
    plans = demo.plan_estate(2000, 11).vms
    healthy = sum(1 for p in plans if demo.SCENARIOS[0].name in p.scenario)
    assert healthy / len(plans) > 0.55
    per_scenario = Counter(p.scenario for p in plans)
    assert max(n for s, n in per_scenario.items() if not s.startswith("healthy")) / len(plans) < 0.08


def test_default_security_rules_match_the_api(estate: Estate) -> None:
    expected = {("AllowVnetInBound", 65000, "Inbound", "Allow"),
                ("AllowAzureLoadBalancerInBound", 65001, "Inbound", "Allow"),
                ("DenyAllInBound", 65500, "Inbound", "Deny"), ("AllowVnetOutBound", 65000, "Outbound", "Allow"),
                ("AllowInternetOutBound", 65001, "Outbound", "Allow"),
                ("DenyAllOutBound", 65500, "Outbound", "Deny")}
    for nsg in estate.nsgs.values():
        rules = nsg["properties"]["defaultSecurityRules"]
        assert {(r["name"], r["properties"]["priority"], r["properties"]["direction"], r["properties"]["access"])
                for r in rules} == expected
        assert all(r["id"] == f"{nsg['id']}/defaultSecurityRules/{r['name']}" for r in rules)


# --- every failure mode is in the 60-VM demo -----------------------------------------------------


def test_demo_carries_every_scenario_and_several_healthy_vms() -> None:
    plans = demo.plan_estate(60, 7, 3).vms
    seen = Counter(p.scenario for p in plans)
    assert {s.name for s in demo.SCENARIOS if s.cause} <= set(seen)
    per_vm_causes = {"outbound-connectivity", "vm-agent", "backup-extension", "sql-vss-backup", "guest-shutdown",
                     "resource-pressure", "guest-dhcp", "backup-protection"}  # schedule-spread is per group
    assert {s.cause for s in demo.SCENARIOS if s.expect == "fail"} == per_vm_causes
    assert seen["healthy"] + seen["healthy-fully-observed"] >= 5


def test_outbound_nic_nsg_denies_storage_or_internet_443(estate: Estate) -> None:
    blocked = [vm for vm in estate.vms.values() if denies_web(estate.nsg_of(estate.vm_nics(vm)[0]))]
    assert blocked
    denied = {d for vm in blocked for r in outbound_rules(estate.nsg_of(estate.vm_nics(vm)[0]))
              if r["access"] == "Deny" for d in destinations(r)}
    assert "Storage" in denied


def test_outbound_subnet_nsg_denies_while_nic_nsg_allows(estate: Estate) -> None:
    def case(vm: dict[str, Any]) -> bool:
        nic = estate.vm_nics(vm)[0]
        nic_allows = any(r["access"] == "Allow" and "443" in ports(r) for r in outbound_rules(estate.nsg_of(nic)))
        return nic_allows and denies_web(estate.nsg_of(estate.nic_subnet(nic)))

    assert any(case(vm) for vm in estate.vms.values())


def test_rules_use_singular_and_plural_fields(estate: Estate) -> None:
    rules = [r["properties"] for nsg in estate.nsgs.values() for r in nsg["properties"]["securityRules"]]
    assert any("destinationPortRanges" in r and "destinationAddressPrefixes" in r and r["access"] == "Deny"
               for r in rules)
    assert any("destinationPortRange" in r and "destinationAddressPrefix" in r for r in rules)


def test_storage_allow_ranks_before_deny_all(estate: Estate) -> None:
    def case(nsg: dict[str, Any] | None) -> bool:
        rules = outbound_rules(nsg)
        allow = [r["priority"] for r in rules if r["access"] == "Allow"
                 and any(d.startswith("Storage.") for d in destinations(r))]
        deny_all = [r["priority"] for r in rules if r["access"] == "Deny" and destinations(r) == ["*"]]
        return bool(allow and deny_all and min(allow) < min(deny_all))

    assert any(case(estate.nsg_of(estate.vm_nics(vm)[0])) for vm in estate.vms.values())


def default_routes_of_vms(estate: Estate) -> Counter[str]:
    hops: Counter[str] = Counter()
    for vm in estate.vms.values():
        table = estate.route_table_of(estate.nic_subnet(estate.vm_nics(vm)[0]))
        for route in table["properties"]["routes"] if table else []:
            if route["properties"]["addressPrefix"] == "0.0.0.0/0":
                hops[route["properties"]["nextHopType"]] += 1
    return hops


def test_default_routes_to_none_and_to_a_firewall(estate: Estate) -> None:
    hops = default_routes_of_vms(estate)
    assert hops["None"] >= 1 and hops["VirtualAppliance"] >= 1


def test_subnets_without_default_outbound_access(estate: Estate) -> None:
    kinds = Counter()
    for vm in estate.vms.values():
        nic = estate.vm_nics(vm)[0]
        subnet = estate.nic_subnet(nic)["properties"]
        if subnet.get("defaultOutboundAccess") is False:
            public = "publicIPAddress" in nic["properties"]["ipConfigurations"][0]["properties"]
            kinds["nat" if "natGateway" in subnet else "public-ip" if public else "none"] += 1
    assert kinds["none"] >= 1 and kinds["nat"] >= 1 and kinds["public-ip"] >= 1


def test_two_nic_vms_with_one_blocked_nic(estate: Estate) -> None:
    blocked_at = set()
    for vm in estate.vms.values():
        nics = estate.vm_nics(vm)
        flags = [denies_web(estate.nsg_of(nic)) for nic in nics]
        if len(nics) == 2 and sum(flags) == 1:
            blocked_at.add(flags.index(True))
            primary = [n["properties"].get("primary") for n in vm["properties"]["networkProfile"]["networkInterfaces"]]
            assert primary == [True, False]
    assert blocked_at == {0, 1}


def test_vm_agent_cases(estate: Estate) -> None:
    profiles = [vm["properties"].get("osProfile") for vm in estate.vms.values()]
    assert None in profiles
    flags = [(p.get("linuxConfiguration") or p["windowsConfiguration"])["provisionVMAgent"] for p in profiles if p]
    assert False in flags and True in flags
    agents = [iv["instanceView"]["vmAgent"] for iv in estate.tables["instanceviews"]]
    assert {s["displayStatus"] for a in agents for s in a["statuses"]} == {"Ready", "Not Ready"}
    versions = {a["vmAgentVersion"] for a in agents}
    assert {"2.2.45", "2.2.9", "2.7.41491.949", "2.2.53.1", "2.11.1.4", "2.7.41491.1102"} <= versions


def test_backup_extension_cases(estate: Estate) -> None:
    rows = [e for e in estate.of_type("microsoft.compute/virtualmachines/extensions")
            if e["properties"]["publisher"] == "Microsoft.Azure.RecoveryServices"]
    assert {e["properties"]["provisioningState"] for e in rows} == {"Succeeded", "Failed"}
    assert all(e["properties"]["typeHandlerVersion"].count(".") == 1 for e in rows)
    handlers = {iv["id"].lower(): h for iv in estate.tables["instanceviews"]
                for h in iv["instanceView"]["vmAgent"]["extensionHandlers"]
                if h["type"].startswith("Microsoft.Azure.RecoveryServices.VMSnapshot")}
    assert {h["type"].rsplit(".", 1)[1] for h in handlers.values()} == {"VMSnapshot", "VMSnapshotLinux"}
    assert {h["status"]["displayStatus"] for h in handlers.values()} == {"Ready", "Not Ready"}
    assert {"1.0.90.0", "1.0.9117.0"} <= {h["typeHandlerVersion"] for h in handlers.values()}
    with_row = {e["id"].lower().rsplit("/extensions/", 1)[0] for e in rows}
    # Today's Azure: most VMs show the extension only through the agent, some also as an ARM resource,
    # a few older ones only as the ARM resource.
    assert len(set(handlers) - with_row) > len(set(handlers) & with_row) > 0
    assert with_row - set(handlers)
    assert any(vm_id not in with_row and vm_id in estate.items for vm_id in estate.vms)


def test_sql_vss_cases(estate: Estate) -> None:
    facts = estate.side("guestfacts")
    sql_vms = [s["properties"]["virtualMachineResourceId"].lower()
               for s in estate.of_type("microsoft.sqlvirtualmachine/sqlvirtualmachines")]
    values = [facts[vm][0]["facts"]["useVssCopyBackup"] if vm in facts else "not collected" for vm in sql_vms]
    assert {True, False, "not collected"} <= set(values)


def test_power_states(estate: Estate) -> None:
    states = Counter(estate.power(vm) for vm in estate.vms.values())
    assert states["PowerState/stopped"] >= 1 and states["PowerState/deallocated"] >= 1
    assert states[None] >= 1 and states["PowerState/running"] > len(estate.vms) / 2


def test_instance_views_only_for_some_running_vms(estate: Estate) -> None:
    viewed = estate.side("instanceviews")
    running = [vm_id for vm_id, vm in estate.vms.items() if estate.power(vm) == "PowerState/running"]
    assert set(viewed) < set(running) | {vm_id for vm_id, vm in estate.vms.items() if estate.power(vm) is None}
    assert any(vm_id not in viewed for vm_id in running)


def slot_counts(estate: Estate) -> Counter[tuple[str, str]]:
    """Active protected VMs per (availability set, UTC instant)."""
    slots: Counter[tuple[str, str]] = Counter()
    for vm in estate.vms.values():
        policy = estate.policy_of(vm)
        if policy and "availabilitySet" in vm["properties"]:
            for slot in week_slots(policy, estate.doc["collectedAt"]):
                slots[vm["properties"]["availabilitySet"]["id"].lower(), slot] += 1
    return slots


def test_schedule_crowd_and_spread(estate: Estate) -> None:
    counts = slot_counts(estate)
    assert max(counts.values()) >= 12
    crowded_slots = {slot[-5:] for (_, slot), n in counts.items() if n > 10}
    assert crowded_slots == {"02:00", "11:00"}  # one instant under four zones; hourly meeting daily
    per_policy = Counter(estate.items[k]["properties"]["policyName"] for k in estate.items)
    assert len(per_policy) >= 5


def test_slot_layouts_in_winter_and_in_july() -> None:
    """Each layout's group: several zones on one instant, one local time in several zones, hourly meeting
    daily, stopped items beside active ones, weekly policies on different days; in July daylight saving pulls
    the first and third apart."""
    plans = demo.plan_estate(600, 11)
    assert [layout.name for layout in demo.LAYOUTS] == plans.layouts
    for when, crowded in ((None, {"crowded-one-instant-four-zones", "hourly-meets-daily"}),
                          (datetime(2026, 7, 15, 6, tzinfo=UTC), set())):
        doc = Estate(demo.generate(600, seed=11, collected_at=when))
        counts = slot_counts(doc)
        by_layout: dict[str, set[str]] = defaultdict(set)
        for vm in plans.vms:
            if vm.layout:
                by_layout[vm.layout].add(vm.avset or "")
        over = {name for name, sets in by_layout.items()
                if any(n > 10 for (avset, _), n in counts.items() if avset.rsplit("/", 1)[-1] in sets)}
        assert over == crowded, when
    zones = {demo.scenarios.POLICY_BY_NAME[p].time_zone for p in demo.LAYOUTS[0].policies}
    assert len(zones) == 4
    stopped = [vm for vm in plans.vms if vm.layout == "stopped-items-not-counted"
               and vm.protection_state == "ProtectionStopped"]
    assert len(stopped) >= 2


def test_collected_at_moves_the_estate_and_stays_deterministic() -> None:
    july = datetime(2026, 7, 15, 6, 30, tzinfo=UTC)
    doc = demo.generate(80, seed=3, collected_at=july)
    assert doc["collectedAt"] == "2026-07-15T06:30:00Z"
    assert msgspec.json.encode(doc) == msgspec.json.encode(demo.generate(80, seed=3, collected_at=july))
    stamps = {p["timeStamp"][:10] for row in doc["tables"]["metrics"] for p in row["data"]}
    assert stamps <= {"2026-07-14", "2026-07-15"}


def test_policy_shapes(estate: Estate) -> None:
    props = [p["properties"] for p in estate.policies.values()]
    kinds = {(p.get("policyType"), p["schedulePolicy"]["schedulePolicyType"],
              p["schedulePolicy"]["scheduleRunFrequency"]) for p in props}
    assert {(None, "SimpleSchedulePolicy", "Daily"), ("V1", "SimpleSchedulePolicy", "Daily"),
            ("V2", "SimpleSchedulePolicyV2", "Daily"), ("V2", "SimpleSchedulePolicyV2", "Hourly")} <= kinds
    assert {"UTC", "Pacific Standard Time", "W. Europe Standard Time"} <= {p["timeZone"] for p in props}
    assert all(p["backupManagementType"] == "AzureIaasVM" for p in props)


def test_resource_pressure_in_the_backup_hour(estate: Estate) -> None:
    found = set()
    for vm_id, series in estate.side("metrics").items():
        assert all(s["unit"] == "Percent" and s["interval"] == "PT1H" and len(s["data"]) == 24 for s in series)
        policy = estate.policy_of(estate.vms[vm_id])
        if policy is None:  # unprotected: no backup hour to look at
            continue
        hour = backup_hour_utc(policy, estate.doc["collectedAt"])
        for s in series:
            assert all(p["minimum"] < p["average"] < p["maximum"] for p in s["data"])  # several samples an hour
            point = next(p for p in s["data"] if int(p["timeStamp"][11:13]) == hour)
            # only the right end shows the pressure: the averages stay under the thresholds
            if s["name"] == "Percentage CPU" and point["maximum"] > 90 and point["average"] < 90:
                found.add("cpu")
            if s["name"] == "Available Memory Percentage" and point["minimum"] < 10 and point["average"] > 10:
                found.add("memory")
    assert found == {"cpu", "memory"}


def test_guest_dhcp_cases(estate: Estate) -> None:
    facts = estate.side("guestfacts")
    assignments = {a["properties"]["targetResourceId"].lower(): a["properties"]["complianceStatus"]
                   for a in estate.tables["guestconfigurationresources"]}
    assert any(rows[0]["facts"]["dhcpEnabled"] is False for rows in facts.values())
    assert {"Compliant", "NonCompliant"} <= set(assignments.values())
    assert any(vm_id not in facts and vm_id not in assignments and estate.power(vm) == "PowerState/running"
               for vm_id, vm in estate.vms.items())
    assert any(rows[0]["facts"]["httpProxy"] for rows in facts.values())


def test_backup_protection_cases(estate: Estate) -> None:
    assert any(vm_id not in estate.items for vm_id in estate.vms)
    states = Counter((i["properties"]["protectionState"], i["properties"].get("currentProtectionState"),
                      i["properties"].get("isScheduledForDeferredDelete")) for i in estate.of_type(ITEM))
    assert {("ProtectionStopped", None, None), ("ProtectionStopped", "SoftDeleted", True),
            ("ProtectionError", None, None), ("Protected", None, None)} <= set(states)
    per_vm = Counter(i["properties"]["sourceResourceId"].lower() for i in estate.of_type(ITEM))
    moved = [vm for vm, n in per_vm.items() if n == 2]
    assert moved and all(vm in estate.items for vm in moved)  # the active one besides the stopped one
    statuses = Counter(i["properties"].get("lastBackupStatus") for i in estate.items.values())
    assert statuses["Failed"] >= 1 and statuses["Completed"] > statuses["Failed"]
    assert all(i["properties"]["workloadType"] == "VM" for i in estate.items.values())


def test_tags_and_markup_for_report_escaping(estate: Estate) -> None:
    tag_values = {v for vm in estate.vms.values() for v in vm["tags"].values()}
    assert {"<script>alert(1)</script>", '"><img src=x onerror=alert(1)>'} <= tag_values
    names = {vm["properties"].get("osProfile", {}).get("computerName", "") for vm in estate.vms.values()}
    assert any("<script>" in n for n in names) and any("onerror" in n for n in names)
    assert any({"env", "owner"} <= set(vm["tags"]) for vm in estate.vms.values())


def test_every_subscription_and_resource_group_has_a_named_tagged_container_row(estate: Estate, large: Estate) -> None:
    from backup_preflight.estate import build_estate

    for doc in (estate.doc, large.doc):
        rows = doc["tables"]["resourcecontainers"]
        subs = {r["subscriptionId"]: r for r in rows if r["type"] == "microsoft.resources/subscriptions"}
        assert list(subs) == doc["scope"]["subscriptions"]
        assert len({r["name"] for r in subs.values()}) == len(subs) and all(r["tags"] for r in subs.values())
        groups = {r["id"].lower() for r in rows if r["type"] == "microsoft.resources/subscriptions/resourcegroups"}
        for table in snapshot.GRAPH_TABLES[:3]:
            for row in doc["tables"][table]:
                assert f"/subscriptions/{row['subscriptionId']}/resourcegroups/{row['resourceGroup']}" in groups
        vms = build_estate(snapshot.from_document(doc, "demo")).vms
        assert all(vm["subscriptionName"] == subs[vm["subscriptionId"]]["name"] for vm in vms)
        tagged = Counter(bool(vm.get("resourceGroupTags")) for vm in vms)
        assert tagged[True] and tagged[False], "tagged and untagged resource groups"
    assert [r["name"] for r in estate.doc["tables"]["resourcecontainers"][:3]] == [
        "Contoso Production", "Contoso Development", "Contoso Shared Services"]
