"""Deterministic synthetic Azure estate, in the row shapes Resource Graph and the Compute API return.

Why: the scanner needs a demo that exercises every cause without an Azure account, and benchmarks
need a 100,000-VM estate that looks like a real one: NSGs, VNets, route tables and backup policies
shared by many VMs, mixed-case ids that differ between sources, side tables that cover only some VMs.

Every VM follows one named `Scenario` from `SCENARIOS`; the scenario's `changes` are the only place a
failure mode is created, so a finding in a report traces back to one line of this file. The first
estate positions (spread evenly) carry every scenario once (`SHOWCASE`), the rest are drawn by weight.
Schedule crowding is structural rather than per VM: see `CROWD_SIZE`.
"""

from __future__ import annotations

import functools
import random
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from backup_preflight import snapshot
from backup_preflight.gcpause import gc_paused

Row = dict[str, Any]

# ---------------------------------------------------------------------------------------------
# Scenarios: the failure modes, in the proportions drawn for VMs outside the showcase
# ---------------------------------------------------------------------------------------------

OUTBOUND, AGENT, EXTENSION = "outbound-connectivity", "vm-agent", "backup-extension"
SQL, SHUTDOWN = "sql-vss-backup", "guest-shutdown"
PRESSURE, DHCP, PROTECTION = "resource-pressure", "guest-dhcp", "backup-protection"

PROXY = "http://proxy:3128"
_SEEN = {"instance_view": True}  # the scenario's evidence is in the instance view: always collect it


@dataclass(frozen=True, slots=True)
class Scenario:
    """One way a VM can be: the `VmPlan` fields it sets and what a correct scan should conclude."""

    name: str
    cause: str | None  # the DESIGN.md cause it exercises; None for the healthy baseline
    expect: str  # "pass", "fail" or "unknown" for that cause
    weight: float  # relative share among randomly drawn VMs
    changes: Mapping[str, Any]
    breaks_backup: bool = False  # the VM's last scheduled backup fails because of it


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("healthy", None, "pass", 0.60, {}),
    Scenario("healthy-fully-observed", None, "pass", 0.05, {
        **_SEEN, "guestfacts": True, "assignment": "Compliant", "metrics": "normal"}),
    # outbound-connectivity: NIC NSG first, then subnet NSG, then routes and default outbound access
    Scenario("nic-nsg-denies-storage", OUTBOUND, "fail", 0.008, {"nics": ("deny-storage",)}, True),
    Scenario("nic-nsg-denies-plural-ranges", OUTBOUND, "fail", 0.005, {"nics": ("deny-plural",)}, True),
    Scenario("subnet-nsg-denies-nic-allows", OUTBOUND, "fail", 0.008,
             {"subnet": "restricted", "nics": ("allow-web",)}, True),
    Scenario("storage-allowed-before-deny-all", OUTBOUND, "pass", 0.01, {"nics": ("storage-first",)}),
    Scenario("route-default-to-none", OUTBOUND, "fail", 0.006, {"subnet": "blackhole"}, True),
    Scenario("route-default-to-firewall", OUTBOUND, "unknown", 0.05, {"subnet": "firewall"}),
    Scenario("http-proxy-behind-firewall", OUTBOUND, "unknown", 0.01,
             {"subnet": "firewall", "proxy": PROXY, "guestfacts": True}),
    Scenario("no-default-outbound", OUTBOUND, "fail", 0.006, {"subnet": "private", "public_ip": False}, True),
    Scenario("no-default-outbound-nat", OUTBOUND, "pass", 0.02, {"subnet": "private-nat"}),
    Scenario("no-default-outbound-public-ip", OUTBOUND, "pass", 0.003, {"subnet": "private", "public_ip": True}),
    Scenario("second-nic-blocked", OUTBOUND, "pass", 0.004, {"nics": (None, "deny-storage")}),
    Scenario("primary-nic-blocked", OUTBOUND, "fail", 0.003, {"nics": ("deny-storage", None)}, True),
    # vm-agent: provisioning flag in ARG, version and Ready only in the instance view
    Scenario("agent-not-provisioned", AGENT, "fail", 0.006,
             {**_SEEN, "provision_agent": False, "agent": "absent", "extension": None}, True),
    Scenario("os-profile-missing", AGENT, "unknown", 0.01, {"os_profile": False}),
    Scenario("agent-not-ready", AGENT, "fail", 0.008, {**_SEEN, "agent": "not-ready"}, True),
    Scenario("agent-old-linux", AGENT, "fail", 0.006, {**_SEEN, "os": "Linux", "agent_version": "2.2.45"}),
    Scenario("agent-old-linux-2.2.9", AGENT, "fail", 0.002, {**_SEEN, "os": "Linux", "agent_version": "2.2.9"}),
    Scenario("agent-old-windows", AGENT, "fail", 0.006,
             {**_SEEN, "os": "Windows", "agent_version": "2.7.41491.949"}),
    Scenario("agent-linux-at-minimum", AGENT, "pass", 0.01, {**_SEEN, "os": "Linux", "agent_version": "2.2.53.1"}),
    Scenario("agent-linux-2.11", AGENT, "pass", 0.01, {**_SEEN, "os": "Linux", "agent_version": "2.11.1.4"}),
    Scenario("agent-windows-current", AGENT, "pass", 0.01,
             {**_SEEN, "os": "Windows", "agent_version": "2.7.41491.1102"}),
    Scenario("instance-view-not-collected", AGENT, "unknown", 0.0, {"instance_view": False}),
    # backup-extension: VMSnapshot / VMSnapshotLinux row in ARG, handler state in the instance view
    Scenario("extension-failed", EXTENSION, "fail", 0.006, {**_SEEN, "extension": "Failed"}, True),
    Scenario("extension-handler-not-ready", EXTENSION, "fail", 0.005, {**_SEEN, "handler_ready": False}, True),
    Scenario("extension-handler-old", EXTENSION, "fail", 0.004,
             {**_SEEN, "os": "Linux", "handler_version": "1.0.90.0"}),  # below the article's 1.0.91.0
    Scenario("extension-not-installed-yet", EXTENSION, "pass", 0.01, {"extension": None, "last_backup": None}),
    Scenario("iaasvmprovider-disabled", EXTENSION, "fail", 0.004,
             {"os": "Windows", "provider_service": "Disabled", "guestfacts": True}),
    # sql-vss-backup: registered SQL VM plus the in-guest USEVSSCOPYBACKUP fact
    Scenario("sql-vss-copy-on", SQL, "pass", 0.02, {"sql": True, "vss": True, "guestfacts": True}),
    Scenario("sql-vss-copy-off", SQL, "fail", 0.008, {"sql": True, "vss": False, "guestfacts": True}),
    Scenario("sql-vss-not-collected", SQL, "unknown", 0.02, {"sql": True, "guestfacts": False}),
    # guest-shutdown: ARG extended power state
    Scenario("shut-down-in-guest", SHUTDOWN, "fail", 0.008, {"power": "stopped"}, True),
    Scenario("deallocated", SHUTDOWN, "pass", 0.04, {"power": "deallocated"}),
    Scenario("power-state-missing", SHUTDOWN, "unknown", 0.01, {"power": None, "instance_view": False}),
    # resource-pressure: Azure Monitor series, spiking in the hour the VM's policy runs
    Scenario("cpu-saturated-at-backup", PRESSURE, "fail", 0.006, {"metrics": "cpu-high", "policy": "Enhanced-0400"}),
    Scenario("memory-exhausted-at-backup", PRESSURE, "fail", 0.006,  # 01:00 Pacific = 09:00 UTC in the series
             {"metrics": "memory-low", "policy": "Enhanced-0100-PST"}),
    # guest-dhcp: in-guest probe or a Machine Configuration assignment
    Scenario("dhcp-disabled", DHCP, "fail", 0.005, {"guestfacts": True, "dhcp": False}),
    Scenario("dhcp-assignment-noncompliant", DHCP, "fail", 0.005,
             {"guestfacts": False, "assignment": "NonCompliant"}),
    Scenario("dhcp-not-collected", DHCP, "unknown", 0.0, {"guestfacts": False, "assignment": None}),
    # backup-protection
    Scenario("unprotected", PROTECTION, "fail", 0.04, {"protected": False, "extension": None}),
    Scenario("last-backup-failed", PROTECTION, "fail", 0.01, {"last_backup": "Failed"}),
)
_BY_NAME = {s.name: s for s in SCENARIOS}
_FULLY_OBSERVED = _BY_NAME["healthy-fully-observed"]
#: Every scenario once, plus a few fully observed healthy VMs so small estates show clean passes.
SHOWCASE: tuple[Scenario, ...] = (
    *(s for s in SCENARIOS if s.cause is not None), _FULLY_OBSERVED, _FULLY_OBSERVED, _FULLY_OBSERVED)
_CUMULATIVE = [sum(s.weight for s in SCENARIOS[: i + 1]) for i in range(len(SCENARIOS))]

#: Report-escaping probes, carried in a tag and the guest names of these scenarios' showcase VMs.
MARKUP = {"agent-old-linux": "<script>alert(1)</script>",
          "nic-nsg-denies-storage": '"><img src=x onerror=alert(1)>'}

#: schedule-spread: the first VMs of a crowded resource group share one availability set and one slot.
CROWD_SIZE = 14
CROWD_SHARE = 0.06  # of resource groups large enough (the estate's first one always)

# ---------------------------------------------------------------------------------------------
# Estate shape
# ---------------------------------------------------------------------------------------------

VMS_PER_SUBSCRIPTION = 4000
VMS_PER_REGION = 3000
REGIONS = {"westeurope": "WestEurope", "eastus2": "EastUS2", "northeurope": "NorthEurope",
           "uksouth": "UKSouth", "swedencentral": "SwedenCentral", "centralus": "CentralUS"}
WORKLOADS = ("App", "Web", "Data", "Crm", "Erp", "Portal", "Payments", "Analytics")
HEALTHY_SUBNETS = ("app", "web", "data", "mgmt")
#: subnet kind -> (name, NSG kind or None, route table kind or None, defaultOutboundAccess, NAT gateway)
SUBNETS: dict[str, tuple[str, str | None, str | None, bool | None, bool]] = {
    "app": ("snet-app", "default", "onprem", None, False),
    "web": ("snet-web", "default", "onprem", True, False),
    "data": ("snet-data", "default", "onprem", None, False),
    "mgmt": ("snet-mgmt", None, None, None, False),
    "restricted": ("snet-restricted", "restricted", "onprem", None, False),
    "blackhole": ("snet-isolated", "default", "blackhole", None, False),
    "firewall": ("snet-egress-fw", "default", "firewall", None, False),
    "private": ("snet-private", "default", None, False, False),
    "private-nat": ("snet-private-nat", "default", None, False, True),
}
_SUBNET_INDEX = {kind: i for i, kind in enumerate(SUBNETS)}
SUBNET_NSGS = ("default", "restricted")
NIC_NSGS = ("standard", "deny-storage", "deny-plural", "allow-web", "storage-first")
ROUTE_TABLES = ("onprem", "blackhole", "firewall")


@dataclass(frozen=True, slots=True)
class PolicySpec:
    """A backup policy every vault carries; `hour` is the local start (time of day or hourly window)."""

    name: str
    version: str  # "V1" (policyType key absent), "V1-explicit", "V2" or "V2-hourly"
    time_zone: str
    hour: int
    minute: int = 0


POLICIES = (
    PolicySpec("DailyPolicy-0200", "V1", "UTC", 2),
    PolicySpec("DefaultPolicy", "V1-explicit", "UTC", 20, 30),
    PolicySpec("Daily-2300-CET", "V1", "W. Europe Standard Time", 23),
    PolicySpec("Enhanced-0100-PST", "V2", "Pacific Standard Time", 1),
    PolicySpec("Enhanced-0400", "V2", "UTC", 4),
    PolicySpec("Enhanced-Hourly-4h", "V2-hourly", "W. Europe Standard Time", 8),
)
_POLICY = {p.name: p for p in POLICIES}
HOT_POLICY = "DailyPolicy-0200"
#: Standard-time offsets; collection dates are in northern winter, so no daylight saving applies.
UTC_OFFSET_HOURS = {"UTC": 0, "W. Europe Standard Time": 1, "Pacific Standard Time": -8}

LINUX_AGENTS = ("2.11.1.4", "2.10.0.8", "2.9.1.1", "2.2.53.1")
WINDOWS_AGENTS = ("2.7.41491.1102", "2.7.41491.1083", "2.7.41491.1010")
SNAPSHOT_HANDLERS = ("1.0.9117.0", "1.0.9152.0")
VM_SIZES = ("Standard_D2s_v5", "Standard_D4s_v5", "Standard_B2ms")
ENVS = ("prod", "prod", "test", "dev")
OWNERS = ("platform@contoso.com", "erp-team@contoso.com", "web-team@contoso.com", "data@contoso.com")


@dataclass(slots=True)
class Site:
    """One subscription-region: a spoke VNet with every subnet kind, its NSGs, route tables and vault."""

    sub: str
    sub_index: int
    region: str
    octet: int
    hosts: Counter[str] = field(default_factory=Counter)
    # Ids every VM of the site refers to, built once so 100k rows share one string each.
    subnet_ids: dict[str, str] = field(init=False)
    nsg_ids: dict[str, str] = field(init=False)
    policy_ids: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.subnet_ids = {kind: f"{self.vnet_id}/subnets/{spec[0]}" for kind, spec in SUBNETS.items()}
        self.nsg_ids = {kind: self.network_id("networkSecurityGroups", f"nsg-{self.region}-{kind}")
                        for kind in SUBNET_NSGS + NIC_NSGS}
        self.policy_ids = {p.name: f"{self.vault_id}/backupPolicies/{p.name}" for p in POLICIES}

    @property
    def net_rg(self) -> str:
        return f"RG-Network-{REGIONS[self.region]}"

    @property
    def backup_rg(self) -> str:
        return f"RG-Backup-{REGIONS[self.region]}"

    @property
    def vnet_name(self) -> str:
        return f"vnet-spoke-{self.region}"

    def network_id(self, kind: str, name: str) -> str:
        return f"/subscriptions/{self.sub}/resourceGroups/{self.net_rg}/providers/Microsoft.Network/{kind}/{name}"

    @property
    def vnet_id(self) -> str:
        return self.network_id("virtualNetworks", self.vnet_name)

    def subnet_id(self, kind: str) -> str:
        return self.subnet_ids[kind]

    def nsg_id(self, kind: str) -> str:
        return self.nsg_ids[kind]

    def route_table_id(self, kind: str) -> str:
        return self.network_id("routeTables", f"rt-{self.region}-{kind}")

    @property
    def nat_id(self) -> str:
        return self.network_id("natGateways", f"ng-{self.region}-egress")

    @property
    def vault_id(self) -> str:
        return (f"/subscriptions/{self.sub}/resourceGroups/{self.backup_rg}"
                f"/providers/Microsoft.RecoveryServices/vaults/rsv-{self.region}")

    def policy_id(self, name: str) -> str:
        return self.policy_ids[name]

    def next_ip(self, kind: str) -> str:
        """Sequential private IPs per subnet (a /20 each; wraps only in absurd one-subnet estates)."""
        host = 4 + self.hosts[kind] % 4091
        self.hosts[kind] += 1
        base = _SUBNET_INDEX[kind] * 16
        return f"10.{self.octet}.{base + host // 256}.{host % 256}"


@dataclass(slots=True)
class VmPlan:
    """Every decision about one VM; the row builders only render it."""

    index: int
    name: str
    id: str  # built once: it recurs in up to ten rows
    scenario: str
    site: Site
    rg: str
    os: str
    vm_guid: str
    size: str
    tags: dict[str, str]
    policy: str
    avset: str | None = None
    sql: bool = False
    power: str | None = "running"
    subnet: str = "app"
    nics: tuple[str | None, ...] = (None,)
    public_ip: bool = False
    unmanaged_disk: bool = False
    os_profile: bool = True
    provision_agent: bool = True
    agent: str = "ready"  # "ready", "not-ready", "absent"
    agent_version: str = ""
    instance_view: bool = True
    monitor_agent: bool = False
    extension: str | None = "Succeeded"  # ARG provisioningState of VMSnapshot(Linux); None = no row
    handler_version: str = SNAPSHOT_HANDLERS[0]
    handler_ready: bool = True
    protected: bool = True
    last_backup: str | None = "Completed"  # None = protection configured, first backup pending
    id_style: str = "exact"  # how the protected item spells the VM id: exact, lower, upper-rg
    metrics: str | None = None  # "normal", "cpu-high", "memory-low"
    guestfacts: bool = False
    dhcp: bool = True
    proxy: str | None = None
    vss: bool | None = None
    provider_service: str = "Automatic"
    assignment: str | None = None  # complianceStatus of AzureBackupDhcpEnabled, None = no assignment
    markup: str | None = None

    @property
    def computer_name(self) -> str:
        return self.markup or self.name

    def nic_id(self, n: int) -> str:
        return (f"/subscriptions/{self.site.sub}/resourceGroups/{self.rg}"
                f"/providers/Microsoft.Network/networkInterfaces/{self.name}-nic{n + 1:02d}")


@dataclass(slots=True)
class Estate:
    """The planned estate: sites, VMs and availability sets (id -> members)."""

    seed: int
    tenant: str
    collected_at: datetime
    subscriptions: list[str]
    sites: list[Site]
    vms: list[VmPlan]
    avsets: dict[str, list[VmPlan]]


# ---------------------------------------------------------------------------------------------
# Public interface
# ---------------------------------------------------------------------------------------------


def generate(vms: int, seed: int = 7, subscriptions: int | None = None) -> dict[str, Any]:
    """Return a snapshot document for a synthetic estate; same arguments, same bytes."""
    with gc_paused():
        estate = plan_estate(vms, seed, subscriptions)
        tables = _render(estate)
    return {
        "schemaVersion": snapshot.SCHEMA_VERSION,
        "collectedAt": _iso(estate.collected_at),
        "scope": {"subscriptions": estate.subscriptions},
        "tables": tables,
        "errors": [],
    }


def demo_document() -> dict[str, Any]:
    """The built-in demo: 50 VMs in 3 subscriptions, every scenario at least once."""
    return generate(50, seed=7, subscriptions=3)


def write(vms: int, seed: int, path: Path) -> None:
    """Write a synthetic estate as a snapshot file (`.json` or `.json.gz`), validated on the way."""
    snapshot.save(snapshot.from_document(generate(vms, seed), str(path)), path)


# ---------------------------------------------------------------------------------------------
# Planning: decide everything about every VM, consuming the random stream in a fixed order
# ---------------------------------------------------------------------------------------------


def plan_estate(vms: int, seed: int, subscriptions: int | None = None) -> Estate:
    """Place VMs in subscriptions, regions and resource groups, and give each a scenario."""
    rng = random.Random(seed)
    tenant = _guid(rng)
    count = subscriptions or max(1, -(-vms // VMS_PER_SUBSCRIPTION))
    subs = [_guid(rng) for _ in range(count)]
    estate = Estate(seed, tenant, datetime(2026, 11, 24, 6, tzinfo=UTC) + timedelta(minutes=seed % 360),
                    subs, [], [], {})
    showcase = _showcase_positions(vms)
    width = max(3, len(str(vms)))
    for k, sub in enumerate(subs):
        share = vms * (k + 1) // count - vms * k // count
        sites = [Site(sub, k, region, 1 + (len(estate.sites) + r) % 250)
                 for r, region in enumerate(_regions(k, share))]
        estate.sites.extend(sites)
        _plan_subscription(estate, rng, sites, share, showcase, width)
    return estate


def _regions(sub_index: int, vms: int) -> list[str]:
    names = list(REGIONS)
    wanted = min(len(names), 1 + (vms - 1) // VMS_PER_REGION) if vms else 1
    return [names[(2 * sub_index + r) % len(names)] for r in range(wanted)]


def _showcase_positions(vms: int) -> dict[int, Scenario]:
    """Spread the showcase evenly over the estate, so small demos mix broken and healthy VMs."""
    shown = SHOWCASE[:vms]
    return {k * vms // len(shown): s for k, s in enumerate(shown)} if shown else {}


def _plan_subscription(estate: Estate, rng: random.Random, sites: list[Site], vms: int,
                       showcase: dict[int, Scenario], width: int) -> None:
    """Fill one subscription with resource groups of ~20 VMs, a few crowding one backup slot."""
    ordinal = 0
    largest = max(6, vms // 3)  # small (demo) subscriptions still get several resource groups
    while vms > 0:
        size = min(rng.randint(8, 32), largest)
        crowded = not estate.vms or (size >= CROWD_SIZE and rng.random() < CROWD_SHARE)
        size = min(vms, max(size, CROWD_SIZE) if crowded else size)
        rg = f"RG-{WORKLOADS[ordinal % len(WORKLOADS)]}-{ordinal + 1:02d}"
        site = sites[ordinal % len(sites)]
        spread_set = f"avset-{rg[3:].lower()}" if rng.random() < 0.3 else None
        for pos in range(size):
            index = len(estate.vms)
            scenario = showcase.get(index) or rng.choices(SCENARIOS, cum_weights=_CUMULATIVE)[0]
            policy = POLICIES[(pos + ordinal) % len(POLICIES)].name  # neighbours on different slots
            plan = _plan_vm(rng, index, scenario, site, rg, width, policy)
            if crowded and pos < CROWD_SIZE:
                plan.policy, plan.avset = HOT_POLICY, f"avset-{rg[3:].lower()}-batch"
            elif spread_set and pos % 3 == 0:
                plan.avset = spread_set
            if index in showcase and scenario.name in MARKUP:
                plan.markup = MARKUP[scenario.name]
                plan.tags["owner"] = plan.markup
            if plan.avset:
                estate.avsets.setdefault(_avset_id(plan), []).append(plan)
            estate.vms.append(plan)
        vms -= size
        ordinal += 1


def _plan_vm(rng: random.Random, index: int, scenario: Scenario, site: Site, rg: str, width: int,
             policy: str) -> VmPlan:
    """A healthy VM with natural variation, then the scenario's changes, then their consequences."""
    changes = scenario.changes
    sql = changes.get("sql", "os" not in changes and rng.random() < 0.04)
    os = "Windows" if sql else changes.get("os") or _pick(rng, ("Linux", "Linux", "Windows"))
    role = "sql" if sql else _pick(rng, ("web", "app", "api") if os == "Linux" else ("app", "iis", "file"))
    name = f"vm-{role}-{index + 1:0{width}d}"
    plan = VmPlan(index=index, name=name, id=_vm_id(site.sub, rg, name), scenario=scenario.name, site=site,
                  rg=rg, os=os, sql=sql, vss=True if sql else None, policy=policy, vm_guid=_guid(rng),
                  size="Standard_E8s_v5" if sql else _pick(rng, VM_SIZES),
                  tags={} if rng.random() < 0.1 else {"env": _pick(rng, ENVS), "owner": _pick(rng, OWNERS)})
    # What healthy VMs differ in: attachments, versions, and which side sources happened to cover them.
    plan.subnet = _pick(rng, HEALTHY_SUBNETS)
    plan.nics = ("standard" if rng.random() < 0.3 else None,)
    plan.public_ip = rng.random() < 0.03
    plan.unmanaged_disk = rng.random() < 0.03
    plan.agent_version = _pick(rng, LINUX_AGENTS if os == "Linux" else WINDOWS_AGENTS)
    plan.handler_version = _pick(rng, SNAPSHOT_HANDLERS)
    plan.monitor_agent = rng.random() < 0.5
    plan.id_style = _pick(rng, ("exact", "exact", "lower", "upper-rg"))
    plan.instance_view = rng.random() < 0.9
    plan.guestfacts = rng.random() < 0.5
    plan.assignment = "Compliant" if rng.random() < 0.3 else None
    plan.metrics = "normal" if rng.random() < 0.25 else None
    for attribute, value in changes.items():
        setattr(plan, attribute, value)
    _settle(plan, scenario)
    return plan


def _settle(plan: VmPlan, scenario: Scenario) -> None:
    """Consequences that hold whatever the scenario: Azure only reports what can exist."""
    if plan.power in ("stopped", "deallocated"):
        plan.instance_view = plan.guestfacts = False
        plan.metrics = None
    if not plan.protected:
        plan.last_backup = None
    elif scenario.breaks_backup and plan.last_backup:
        plan.last_backup = "Failed"


# ---------------------------------------------------------------------------------------------
# Rendering: rows exactly as Resource Graph (and the side sources) return them
# ---------------------------------------------------------------------------------------------


def _render(estate: Estate) -> dict[str, list[Row]]:
    """All tables; shared infrastructure first, then each VM's own rows."""
    resources: list[Row] = []
    recovery: list[Row] = []
    used = Counter((vm.site.vault_id, vm.policy) for vm in estate.vms if vm.protected)
    for site in estate.sites:
        resources.extend(_site_rows(estate, site))
        recovery.extend(_policy_row(estate, site, spec, used[site.vault_id, spec.name]) for spec in POLICIES)
    resources.extend(_avset_row(estate, avset_id, members) for avset_id, members in estate.avsets.items())
    side = _SideTables(random.Random(estate.seed + 1))
    for vm in estate.vms:
        resources.extend(_vm_resource_rows(estate, vm))
        if vm.protected:
            recovery.append(_protected_item_row(estate, vm))
        side.add(estate, vm)
    return {"resources": resources, "recoveryservicesresources": recovery,
            "guestconfigurationresources": side.assignments, "instanceviews": side.instance_views,
            "guestfacts": side.guestfacts, "metrics": side.metrics}


@dataclass(slots=True)
class _SideTables:
    """Rows that exist only for some VMs: collected by other APIs or probes, or deployed selectively."""

    rng: random.Random  # metric noise, drawn after planning so it never shifts a plan
    assignments: list[Row] = field(default_factory=list)
    instance_views: list[Row] = field(default_factory=list)
    guestfacts: list[Row] = field(default_factory=list)
    metrics: list[Row] = field(default_factory=list)

    def add(self, estate: Estate, vm: VmPlan) -> None:
        if vm.assignment:
            self.assignments.append(_assignment_row(estate, vm))
        if vm.instance_view:
            self.instance_views.append({"id": vm.id, "instanceView": _instance_view(estate, vm)})
        if vm.guestfacts:
            self.guestfacts.append(_guestfacts_row(estate, vm))
        if vm.metrics:
            self.metrics.extend(_metric_rows(estate, vm, self.rng))


def _arg_row(estate: Estate, rid: str, name: str, rtype: str, sub: str, rg: str, location: str,
             properties: Row, tags: dict[str, str] | None = None, sku: Row | None = None) -> Row:
    """The columns every Resource Graph objectArray row carries (lowercase type and resourceGroup)."""
    return {"id": rid, "name": name, "type": rtype, "tenantId": estate.tenant, "kind": "",
            "location": location, "resourceGroup": _lower(rg), "subscriptionId": sub, "managedBy": "",
            "sku": sku, "plan": None, "properties": properties, "tags": tags or {}, "identity": None,
            "zones": None, "extendedLocation": None}


# --- shared network and backup infrastructure -------------------------------------------------


def _site_rows(estate: Estate, site: Site) -> list[Row]:
    rows = [_vnet_row(estate, site)]
    rows.extend(_nsg_row(estate, site, kind) for kind in SUBNET_NSGS + NIC_NSGS)
    rows.extend(_route_table_row(estate, site, kind) for kind in ROUTE_TABLES)
    nat_pip = site.network_id("publicIPAddresses", f"pip-ng-{site.region}-egress")
    rows.append(_arg_row(estate, site.nat_id, site.nat_id.rsplit("/", 1)[1], "microsoft.network/natgateways",
                         site.sub, site.net_rg, site.region, {
                             "provisioningState": "Succeeded", "idleTimeoutInMinutes": 4,
                             "publicIpAddresses": [{"id": nat_pip}],
                             "subnets": [{"id": site.subnet_id("private-nat")}]}, sku={"name": "Standard"}))
    rows.append(_public_ip_row(estate, site, nat_pip, f"52.{site.octet}.0.10", {"id": site.nat_id}, "natGateway"))
    rows.append(_arg_row(estate, site.vault_id, site.vault_id.rsplit("/", 1)[1], "microsoft.recoveryservices/vaults",
                         site.sub, site.backup_rg, site.region, {"provisioningState": "Succeeded"},
                         sku={"name": "RS0", "tier": "Standard"}))
    return rows


def _vnet_row(estate: Estate, site: Site) -> Row:
    subnets = []
    for kind, (name, nsg, route_table, default_outbound, nat) in SUBNETS.items():
        props: Row = {"provisioningState": "Succeeded",
                      "addressPrefix": f"10.{site.octet}.{_SUBNET_INDEX[kind] * 16}.0/20"}
        if nsg:
            props["networkSecurityGroup"] = {"id": site.nsg_id(nsg)}
        if route_table:
            props["routeTable"] = {"id": site.route_table_id(route_table)}
        if nat:
            props["natGateway"] = {"id": site.nat_id}
        if default_outbound is not None:
            props["defaultOutboundAccess"] = default_outbound
        props["privateEndpointNetworkPolicies"] = "Disabled"
        props["privateLinkServiceNetworkPolicies"] = "Enabled"
        subnets.append({"name": name, "id": site.subnet_id(kind), "properties": props,
                        "type": "Microsoft.Network/virtualNetworks/subnets"})
    return _arg_row(estate, site.vnet_id, site.vnet_name, "microsoft.network/virtualnetworks", site.sub,
                    site.net_rg, site.region, {
                        "provisioningState": "Succeeded", "resourceGuid": _name_guid(site.vnet_id),
                        "addressSpace": {"addressPrefixes": [f"10.{site.octet}.0.0/16"]},
                        "subnets": subnets, "virtualNetworkPeerings": [], "enableDdosProtection": False},
                    tags={"env": "prod", "owner": "network@contoso.com"})


def _nsg_row(estate: Estate, site: Site, kind: str) -> Row:
    nsg_id = site.nsg_id(kind)
    return _arg_row(estate, nsg_id, nsg_id.rsplit("/", 1)[1], "microsoft.network/networksecuritygroups",
                    site.sub, site.net_rg, site.region, {
                        "provisioningState": "Succeeded", "resourceGuid": _name_guid(nsg_id),
                        "securityRules": _custom_rules(site, kind, nsg_id),
                        "defaultSecurityRules": _default_rules(nsg_id)})


def _custom_rules(site: Site, kind: str, nsg_id: str) -> list[Row]:
    """Each NSG kind's own rules; singular and plural port/prefix fields both occur, as in real NSGs."""
    bastion = _rule(nsg_id, "Allow-Bastion-SSH-RDP", 200, "Inbound", "Allow", ["22", "3389"], "VirtualNetwork",
                    source="10.255.1.0/26")
    vnet_out = _rule(nsg_id, "Allow-VNet-Outbound", 110, "Outbound", "Allow", "*", "VirtualNetwork", "*")
    rules = {
        "default": [bastion],
        "restricted": [bastion, vnet_out,
                       _rule(nsg_id, "Deny-Internet-Outbound", 4000, "Outbound", "Deny", "*", "Internet", "*")],
        "standard": [_rule(nsg_id, "Allow-HTTPS-Inbound", 300, "Inbound", "Allow", "443", "VirtualNetwork")],
        "deny-storage": [_rule(nsg_id, "Deny-Storage-HTTPS", 150, "Outbound", "Deny", "443", "Storage")],
        "deny-plural": [vnet_out, _rule(nsg_id, "Deny-Public-Web", 200, "Outbound", "Deny", ["80", "443", "8443"],
                                        ["0.0.0.0/1", "128.0.0.0/1"])],
        "allow-web": [_rule(nsg_id, "Allow-HTTPS-Internet", 100, "Outbound", "Allow", "443", "Internet")],
        "storage-first": [
            _rule(nsg_id, f"Allow-Storage-{REGIONS[site.region]}", 100, "Outbound", "Allow", ["443", "8443"],
                  f"Storage.{REGIONS[site.region]}"),
            vnet_out,
            _rule(nsg_id, "Deny-All-Outbound", 4000, "Outbound", "Deny", "*", "*", "*")],
    }
    return rules[kind]


def _rule(nsg_id: str, name: str, priority: int, direction: str, access: str, ports: str | list[str],
          destination: str | list[str], protocol: str = "Tcp", source: str = "*") -> Row:
    """A custom security rule; a list value goes to the plural field, as the API returns it."""
    props: Row = {"provisioningState": "Succeeded", "protocol": protocol, "sourcePortRange": "*"}
    if isinstance(ports, list):
        props["destinationPortRanges"] = ports
    else:
        props["destinationPortRange"] = ports
    props["sourceAddressPrefix"] = source
    if isinstance(destination, list):
        props["destinationAddressPrefixes"] = destination
    else:
        props["destinationAddressPrefix"] = destination
    props.update(access=access, priority=priority, direction=direction)
    return {"name": name, "id": f"{nsg_id}/securityRules/{name}", "properties": props}


_DEFAULT_RULES = (
    ("AllowVnetInBound", "Allow inbound traffic from all VMs in VNET", "VirtualNetwork", "VirtualNetwork",
     "Allow", 65000, "Inbound"),
    ("AllowAzureLoadBalancerInBound", "Allow inbound traffic from azure load balancer", "AzureLoadBalancer",
     "*", "Allow", 65001, "Inbound"),
    ("DenyAllInBound", "Deny all inbound traffic", "*", "*", "Deny", 65500, "Inbound"),
    ("AllowVnetOutBound", "Allow outbound traffic from all VMs to all VMs in VNET", "VirtualNetwork",
     "VirtualNetwork", "Allow", 65000, "Outbound"),
    ("AllowInternetOutBound", "Allow outbound traffic from all VMs to Internet", "*", "Internet", "Allow",
     65001, "Outbound"),
    ("DenyAllOutBound", "Deny all outbound traffic", "*", "*", "Deny", 65500, "Outbound"),
)


def _default_rules(nsg_id: str) -> list[Row]:
    """The six platform rules, exactly as NetworkSecurityGroupGet.json returns them."""
    return [{"name": name, "id": f"{nsg_id}/defaultSecurityRules/{name}", "properties": {
        "provisioningState": "Succeeded", "description": description, "protocol": "*", "sourcePortRange": "*",
        "destinationPortRange": "*", "sourceAddressPrefix": source, "destinationAddressPrefix": destination,
        "access": access, "priority": priority, "direction": direction}}
        for name, description, source, destination, access, priority, direction in _DEFAULT_RULES]


def _route_table_row(estate: Estate, site: Site, kind: str) -> Row:
    rt_id = site.route_table_id(kind)
    onprem = ("to-onprem", "192.168.0.0/16", "VirtualNetworkGateway", None)
    routes = {"onprem": [onprem],
              "blackhole": [("default-blackhole", "0.0.0.0/0", "None", None)],
              "firewall": [("default-to-firewall", "0.0.0.0/0", "VirtualAppliance", "10.255.0.4"), onprem]}[kind]
    rendered = []
    for name, prefix, hop, hop_ip in routes:
        props: Row = {"provisioningState": "Succeeded", "addressPrefix": prefix, "nextHopType": hop}
        if hop_ip:
            props["nextHopIpAddress"] = hop_ip
        rendered.append({"name": name, "id": f"{rt_id}/routes/{name}", "properties": props})
    subnets = [{"id": site.subnet_id(k)} for k, spec in SUBNETS.items() if spec[2] == kind]
    return _arg_row(estate, rt_id, rt_id.rsplit("/", 1)[1], "microsoft.network/routetables", site.sub,
                    site.net_rg, site.region, {"provisioningState": "Succeeded", "disableBgpRoutePropagation": False,
                                               "routes": rendered, "subnets": subnets})


def _public_ip_row(estate: Estate, site: Site, pip_id: str, address: str, owner: Row, owner_key: str) -> Row:
    return _arg_row(estate, pip_id, pip_id.rsplit("/", 1)[1], "microsoft.network/publicipaddresses", site.sub,
                    pip_id.split("/")[4], site.region, {
                        "provisioningState": "Succeeded", "ipAddress": address, "publicIPAddressVersion": "IPv4",
                        "publicIPAllocationMethod": "Static", "idleTimeoutInMinutes": 4, owner_key: owner},
                    sku={"name": "Standard", "tier": "Regional"})


def _policy_row(estate: Estate, site: Site, spec: PolicySpec, items: int) -> Row:
    """V1 and V2 (daily, hourly) policies; odd subscriptions spell the id `/Subscriptions/` as ARM does."""
    run_time = f"2024-01-01T{spec.hour:02d}:{spec.minute:02d}:00Z"
    if spec.version == "V2-hourly":
        schedule: Row = {"schedulePolicyType": "SimpleSchedulePolicyV2", "scheduleRunFrequency": "Hourly",
                         "hourlySchedule": {"interval": 4, "scheduleWindowStartTime": run_time,
                                            "scheduleWindowDuration": 16}}
    elif spec.version == "V2":
        schedule = {"schedulePolicyType": "SimpleSchedulePolicyV2", "scheduleRunFrequency": "Daily",
                    "dailySchedule": {"scheduleRunTimes": [run_time]}}
    else:
        schedule = {"schedulePolicyType": "SimpleSchedulePolicy", "scheduleRunFrequency": "Daily",
                    "scheduleRunTimes": [run_time], "scheduleWeeklyFrequency": 0}
    props: Row = {"backupManagementType": "AzureIaasVM", "protectedItemsCount": items,
                  "schedulePolicy": schedule, "retentionPolicy": {
                      "retentionPolicyType": "LongTermRetentionPolicy", "dailySchedule": {
                          "retentionTimes": [run_time], "retentionDuration": {"count": 30, "durationType": "Days"}}},
                  "instantRpRetentionRangeInDays": 2, "timeZone": spec.time_zone}
    if spec.version.startswith("V2"):
        props.update(policyType="V2", snapshotConsistencyType="OnlyCrashConsistent", instantRpRetentionRangeInDays=7)
    elif spec.version == "V1-explicit":
        props["policyType"] = "V1"
    rid = site.policy_id(spec.name)
    if site.sub_index % 2:
        rid = "/Subscriptions/" + rid[len("/subscriptions/"):]
    return _arg_row(estate, rid, spec.name, "microsoft.recoveryservices/vaults/backuppolicies", site.sub,
                    site.backup_rg, site.region, props)


def _avset_id(vm: VmPlan) -> str:
    return (f"/subscriptions/{vm.site.sub}/resourceGroups/{vm.rg}"
            f"/providers/Microsoft.Compute/availabilitySets/{vm.avset}")


def _avset_row(estate: Estate, avset_id: str, members: list[VmPlan]) -> Row:
    """ARM lists members in upper case (`.../VIRTUALMACHINES/VM-APP-001`) — one more casing to join."""
    first = members[0]
    return _arg_row(estate, avset_id, first.avset or "", "microsoft.compute/availabilitysets", first.site.sub,
                    first.rg, first.site.region, {
                        "platformFaultDomainCount": 2, "platformUpdateDomainCount": 5,
                        "virtualMachines": [{"id": _upper_tail(vm.id)} for vm in members]},
                    sku={"name": "Aligned"})


# --- per-VM resources -------------------------------------------------------------------------


def _vm_resource_rows(estate: Estate, vm: VmPlan) -> list[Row]:
    nic_ids = [vm.nic_id(n) for n in range(len(vm.nics))]
    pip_id = (f"/subscriptions/{vm.site.sub}/resourceGroups/{vm.rg}"
              f"/providers/Microsoft.Network/publicIPAddresses/{vm.name}-pip") if vm.public_ip else None
    rows = [_vm_row(estate, vm, nic_ids)]
    rows.extend(_nic_row(estate, vm, nic_id, n == 0, nsg, pip_id if n == 0 else None)
                for n, (nic_id, nsg) in enumerate(zip(nic_ids, vm.nics, strict=True)))
    if pip_id:
        rows.append(_public_ip_row(estate, vm.site, pip_id, _public_address(vm.index),
                                   {"id": f"{nic_ids[0]}/ipConfigurations/ipconfig1"}, "ipConfiguration"))
    if vm.extension:
        rows.append(_snapshot_extension_row(estate, vm, vm.extension))
    if vm.monitor_agent:
        rows.append(_monitor_extension_row(estate, vm))
    if vm.sql:
        rows.append(_sql_row(estate, vm))
    return rows


_LINUX_IMAGE = {"publisher": "Canonical", "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts-gen2",
                "version": "latest"}
_WINDOWS_IMAGE = {"publisher": "MicrosoftWindowsServer", "offer": "WindowsServer",
                  "sku": "2022-datacenter-azure-edition", "version": "latest"}
_SQL_IMAGE = {"publisher": "MicrosoftSQLServer", "offer": "sql2019-ws2022", "sku": "enterprise", "version": "latest"}
_OS_NAMES = {"Linux": ("ubuntu", "22.04"), "Windows": ("Windows Server 2022 Datacenter", "10.0.20348.2340")}
_POWER = {"running": "VM running", "stopped": "VM stopped", "deallocated": "VM deallocated"}


def _vm_row(estate: Estate, vm: VmPlan, nic_ids: list[str]) -> Row:
    props: Row = {"vmId": vm.vm_guid, "hardwareProfile": {"vmSize": vm.size},
                  "storageProfile": _storage_profile(vm)}
    if vm.os_profile:
        props["osProfile"] = _os_profile(vm)
    if len(nic_ids) == 1:  # single-NIC VMs usually carry no `primary` flag
        props["networkProfile"] = {"networkInterfaces": [{"id": nic_ids[0]}]}
    else:
        props["networkProfile"] = {"networkInterfaces": [
            {"id": nic_id, "properties": {"primary": n == 0}} for n, nic_id in enumerate(nic_ids)]}
    if vm.avset:
        props["availabilitySet"] = {"id": _upper_tail(_avset_id(vm))}
    props["provisioningState"] = "Succeeded"
    props["timeCreated"] = f"{2021 + vm.index % 5}-0{1 + vm.index % 9}-1{vm.index % 10}T08:{vm.index % 60:02d}:00Z"
    if vm.power:
        props["extended"] = {"instanceView": _extended(vm, vm.power)}
    return _arg_row(estate, vm.id, vm.name, "microsoft.compute/virtualmachines", vm.site.sub, vm.rg,
                    vm.site.region, props, tags=vm.tags)


def _extended(vm: VmPlan, power_state: str) -> Row:
    """ARG's preview extended properties; powered-off VMs carry only the power state."""
    power = {"code": f"PowerState/{power_state}", "displayStatus": _POWER[power_state], "level": "Info"}
    if power_state != "running":
        return {"powerState": power}
    os_name, os_version = _os_names(vm)
    return {"computerName": vm.computer_name, "hyperVGeneration": "V2", "osName": os_name,
            "osVersion": os_version, "powerState": power}


def _os_names(vm: VmPlan) -> tuple[str, str]:
    name, version = _OS_NAMES[vm.os]
    return (f"{name} {vm.markup}" if vm.markup else name), version


def _storage_profile(vm: VmPlan) -> Row:
    """Managed disks mostly; a few legacy unmanaged VHDs; specialized (attached) disks lack an image."""
    disk: Row = {"osType": vm.os, "name": f"{vm.name}_OsDisk_1", "caching": "ReadWrite",
                 "createOption": "FromImage" if vm.os_profile else "Attach",
                 "diskSizeGB": 30 if vm.os == "Linux" else 127}
    if vm.unmanaged_disk:
        disk["vhd"] = {"uri": f"https://stlegacy{vm.site.octet:03d}.blob.core.windows.net/vhds/{vm.name}-os.vhd"}
    else:
        disk["managedDisk"] = {"id": (f"/subscriptions/{vm.site.sub}/resourceGroups/{vm.rg.upper()}"
                                      f"/providers/Microsoft.Compute/disks/{vm.name}_OsDisk_1"),
                               "storageAccountType": "Premium_LRS"}
    profile: Row = {"osDisk": disk, "dataDisks": []}
    if vm.os_profile:
        image = _SQL_IMAGE if vm.sql else _LINUX_IMAGE if vm.os == "Linux" else _WINDOWS_IMAGE
        profile = {"imageReference": dict(image), **profile}
    return profile


def _os_profile(vm: VmPlan) -> Row:
    if vm.os == "Linux":
        config: Row = {"disablePasswordAuthentication": True, "provisionVMAgent": vm.provision_agent,
                       "patchSettings": {"patchMode": "ImageDefault", "assessmentMode": "ImageDefault"}}
        key = "linuxConfiguration"
    else:
        config = {"provisionVMAgent": vm.provision_agent, "enableAutomaticUpdates": True,
                  "patchSettings": {"patchMode": "AutomaticByOS", "assessmentMode": "ImageDefault"}}
        key = "windowsConfiguration"
    return {"computerName": vm.computer_name, "adminUsername": "azureadmin", key: config, "secrets": [],
            "allowExtensionOperations": True, "requireGuestProvisionSignal": True}


def _nic_row(estate: Estate, vm: VmPlan, nic_id: str, primary: bool, nsg: str | None,
             public_ip: str | None) -> Row:
    """One NIC of the VM; back-references use ARM's upper-case resource group, as real rows do."""
    ip_props: Row = {"provisioningState": "Succeeded", "privateIPAddress": vm.site.next_ip(vm.subnet),
                     "privateIPAllocationMethod": "Dynamic", "subnet": {"id": vm.site.subnet_id(vm.subnet)},
                     "primary": True, "privateIPAddressVersion": "IPv4"}
    if public_ip:
        ip_props["publicIPAddress"] = {"id": public_ip}
    props: Row = {"provisioningState": "Succeeded", "ipConfigurations": [
        {"name": "ipconfig1", "id": f"{nic_id}/ipConfigurations/ipconfig1", "properties": ip_props}]}
    if nsg:
        props["networkSecurityGroup"] = {"id": vm.site.nsg_id(nsg)}
    props.update(primary=primary, enableAcceleratedNetworking=vm.size != "Standard_B2ms", enableIPForwarding=False,
                 virtualMachine={"id": _vm_id(vm.site.sub, vm.rg.upper(), vm.name)}, nicType="Standard")
    return _arg_row(estate, nic_id, nic_id.rsplit("/", 1)[1], "microsoft.network/networkinterfaces", vm.site.sub,
                    vm.rg, vm.site.region, props)


def _snapshot_type(vm: VmPlan) -> str:
    return "VMSnapshotLinux" if vm.os == "Linux" else "VMSnapshot"


def _snapshot_extension_row(estate: Estate, vm: VmPlan, state: str) -> Row:
    """Installed by the first backup; ARG shows major.minor only (`1.0` Linux, `1.9` Windows)."""
    name = _snapshot_type(vm)
    return _extension_row(estate, vm, name, "Microsoft.Azure.RecoveryServices", name,
                          "1.0" if vm.os == "Linux" else "1.9", state)


def _monitor_extension_row(estate: Estate, vm: VmPlan) -> Row:
    name = f"AzureMonitor{vm.os}Agent"
    return _extension_row(estate, vm, name, "Microsoft.Azure.Monitor", name,
                          "1.33" if vm.os == "Linux" else "1.29", "Succeeded")


def _extension_row(estate: Estate, vm: VmPlan, name: str, publisher: str, ext_type: str, version: str,
                   state: str) -> Row:
    return _arg_row(estate, f"{vm.id}/extensions/{name}", name, "microsoft.compute/virtualmachines/extensions",
                    vm.site.sub, vm.rg, vm.site.region, {
                        "publisher": publisher, "type": ext_type, "typeHandlerVersion": version,
                        "autoUpgradeMinorVersion": True, "provisioningState": state})


def _sql_row(estate: Estate, vm: VmPlan) -> Row:
    rid = (f"/subscriptions/{vm.site.sub}/resourceGroups/{vm.rg}"
           f"/providers/Microsoft.SqlVirtualMachine/sqlVirtualMachines/{vm.name}")
    return _arg_row(estate, rid, vm.name, "microsoft.sqlvirtualmachine/sqlvirtualmachines", vm.site.sub, vm.rg,
                    vm.site.region, {"virtualMachineResourceId": vm.id, "provisioningState": "Succeeded",
                                     "sqlImageOffer": "SQL2019-WS2022", "sqlImageSku": "Enterprise",
                                     "sqlServerLicenseType": "AHUB" if vm.index % 2 else "PAYG",
                                     "sqlManagement": "Full"})


# --- backup items -----------------------------------------------------------------------------


def _protected_item_row(estate: Estate, vm: VmPlan) -> Row:
    """As Compute_ProtectedItem_Get.json; sourceResourceId spelled as the vault happens to spell it."""
    container = f"iaasvmcontainerv2;{vm.rg.lower()};{vm.name}"
    vault = vm.site.vault_id
    rid = (f"{vault}/backupFabrics/Azure/protectionContainers/IaasVMContainer;{container}"
           f"/protectedItems/VM;{container}")
    spec = _POLICY[vm.policy]
    props: Row = {"backupManagementType": "AzureIaasVM", "workloadType": "VM", "containerName": container,
                  "friendlyName": vm.name, "protectedItemType": "Microsoft.Compute/virtualMachines",
                  "sourceResourceId": _spell(vm.id, vm.id_style), "virtualMachineId": vm.id,
                  "policyId": vm.site.policy_id(vm.policy), "policyName": vm.policy,
                  "policyType": "V2" if spec.version.startswith("V2") else "V1"}
    if vm.last_backup is None:
        props.update(protectionState="IRPending", protectionStatus="Healthy", healthStatus="Passed")
    else:
        ok = vm.last_backup == "Completed"
        last = _backup_time(estate, spec)
        props.update(protectionState="Protected", protectionStatus="Healthy" if ok else "Unhealthy",
                     healthStatus="Passed" if ok else "ActionRequired", lastBackupStatus=vm.last_backup,
                     lastBackupTime=_iso(last),
                     lastRecoveryPoint=_iso(last if ok else last - timedelta(days=3)))
    props["protectedItemDataId"] = str(10**17 + vm.index)
    return _arg_row(estate, rid, f"VM;{container}",
                    "microsoft.recoveryservices/vaults/backupfabrics/protectioncontainers/protecteditems",
                    vm.site.sub, vm.site.backup_rg, vm.site.region, props)


def _backup_hour_utc(spec: PolicySpec) -> int:
    return (spec.hour - UTC_OFFSET_HOURS[spec.time_zone]) % 24


def _backup_time(estate: Estate, spec: PolicySpec) -> datetime:
    """The latest scheduled run before collection, plus the minutes a snapshot takes."""
    day = estate.collected_at.replace(hour=0, minute=0)
    run = day + timedelta(hours=_backup_hour_utc(spec), minutes=spec.minute + 17)
    return run if run < estate.collected_at else run - timedelta(days=1)


# --- side tables ------------------------------------------------------------------------------


def _instance_view(estate: Estate, vm: VmPlan) -> Row:
    """VirtualMachineInstanceView as the Compute API returns it (VirtualMachine_Get_InstanceView.json)."""
    when = _iso(estate.collected_at - timedelta(minutes=3))
    handlers: list[Row] = []
    extensions: list[Row] = []
    if vm.extension:
        _add_snapshot_extension(vm, handlers, extensions)
    if vm.monitor_agent:
        ext_type = f"Microsoft.Azure.Monitor.AzureMonitor{vm.os}Agent"
        version = "1.33.1" if vm.os == "Linux" else "1.29.0.0"
        handlers.append({"type": ext_type, "typeHandlerVersion": version, "status": dict(_READY_HANDLER)})
        extensions.append({"name": f"AzureMonitor{vm.os}Agent", "type": ext_type, "typeHandlerVersion": version,
                           "statuses": [dict(_PROVISIONED_EXTENSION)]})
    os_name, os_version = _os_names(vm)
    return {"computerName": vm.computer_name, "osName": os_name, "osVersion": os_version,
            "vmAgent": {"vmAgentVersion": "Unknown" if vm.agent == "absent" else vm.agent_version,
                        "statuses": [_agent_status(vm, when)], "extensionHandlers": handlers},
            "extensions": extensions, "hyperVGeneration": "V2",
            "statuses": [{"code": "ProvisioningState/succeeded", "level": "Info",
                          "displayStatus": "Provisioning succeeded", "time": when},
                         {"code": "PowerState/running", "level": "Info", "displayStatus": "VM running"}]}


_READY_HANDLER = {"code": "ProvisioningState/succeeded", "level": "Info", "displayStatus": "Ready"}
_PROVISIONED_EXTENSION = {"code": "ProvisioningState/succeeded", "level": "Info",
                          "displayStatus": "Provisioning succeeded", "message": "Enable succeeded"}


def _agent_status(vm: VmPlan, when: str) -> Row:
    if vm.agent == "ready":
        return {"code": "ProvisioningState/succeeded", "level": "Info", "displayStatus": "Ready",
                "message": "GuestAgent is running and processing the extensions.", "time": when}
    message = ("VM status blob is found but not yet populated." if vm.agent == "absent"
               else "VM Agent is unresponsive.")
    return {"code": "ProvisioningState/Unavailable", "level": "Warning", "displayStatus": "Not Ready",
            "message": message, "time": when}


def _add_snapshot_extension(vm: VmPlan, handlers: list[Row], extensions: list[Row]) -> None:
    """The backup extension's handler (full version, Ready or not) and its last operation."""
    ext_type = f"Microsoft.Azure.RecoveryServices.{_snapshot_type(vm)}"
    handler = dict(_READY_HANDLER) if vm.handler_ready else {
        "code": "ProvisioningState/Unavailable", "level": "Warning", "displayStatus": "Not Ready",
        "message": "Handler Microsoft.Azure.RecoveryServices has not reported status for 40 minutes"}
    handlers.append({"type": ext_type, "typeHandlerVersion": vm.handler_version, "status": handler})
    if vm.extension == "Failed":
        status = {"code": "ProvisioningState/failed/1", "level": "Error", "displayStatus": "Provisioning failed",
                  "message": "ExtensionOperationFailed: snapshot operation did not complete within the timeout"}
    else:
        status = dict(_PROVISIONED_EXTENSION)
    extensions.append({"name": _snapshot_type(vm), "type": ext_type, "typeHandlerVersion": vm.handler_version,
                       "statuses": [status]})


def _guestfacts_row(estate: Estate, vm: VmPlan) -> Row:
    windows = vm.os == "Windows"
    return {"id": vm.id, "collectedAt": _iso(estate.collected_at - timedelta(minutes=20)), "facts": {
        "dhcpEnabled": vm.dhcp, "httpProxy": vm.proxy, "useVssCopyBackup": vm.vss if vm.sql else None,
        "iaasVmProviderService": vm.provider_service if windows else None}}


def _assignment_row(estate: Estate, vm: VmPlan) -> Row:
    """A custom Machine Configuration assignment that checks DHCP in the guest."""
    name = "AzureBackupDhcpEnabled"
    compliant = vm.assignment == "Compliant"
    reason = ("DHCP is enabled on the primary network adapter" if compliant
              else "DHCP is disabled on adapter 'Ethernet': static address configured")
    checked = _iso(estate.collected_at - timedelta(hours=2, minutes=vm.index % 60))
    return _arg_row(estate, f"{vm.id}/providers/Microsoft.GuestConfiguration/guestConfigurationAssignments/{name}",
                    name, "microsoft.guestconfiguration/guestconfigurationassignments", vm.site.sub, vm.rg,
                    vm.site.region, {
                        "complianceStatus": vm.assignment, "targetResourceId": vm.id,
                        "lastComplianceStatusChecked": checked, "provisioningState": "Succeeded",
                        "resourceType": "Microsoft.Compute/virtualMachines",
                        "guestConfiguration": {"name": name, "version": "1.0.0", "contentType": "Custom"},
                        "latestAssignmentReport": {"complianceStatus": vm.assignment, "resources": [{
                            "complianceStatus": vm.assignment, "resourceId": "[DhcpEnabled]PrimaryAdapter",
                            "reasons": [{"code": "DhcpEnabled", "phrase": reason}]}]}})


def _metric_rows(estate: Estate, vm: VmPlan, rng: random.Random) -> list[Row]:
    """Hourly CPU and available-memory series for the last day; pressure peaks in the backup hour."""
    end = estate.collected_at.replace(minute=0)
    start = end - timedelta(hours=24)
    stamps = _hour_stamps(start)
    draw = rng.random
    cpu, memory = [], []
    for _, stamp in stamps:  # values in tenths of a percent, looked up in _TENTHS
        busy = 30 + int(draw() * 420)  # CPU average 3-45 %, peaks stay below 85 %
        cpu.append({"timeStamp": stamp, "average": _TENTHS[busy],
                    "maximum": _TENTHS[min(850, busy + 50 + int(draw() * 250))]})
        free = 250 + int(draw() * 550)  # available memory 25-80 %
        memory.append({"timeStamp": stamp, "average": _TENTHS[free],
                       "maximum": _TENTHS[free + 10 + int(draw() * 90)]})
    if vm.metrics != "normal":
        _add_pressure(vm, stamps, cpu if vm.metrics == "cpu-high" else memory, draw)
    timespan = f"{_iso(start)}/{_iso(end)}"
    return [{"id": vm.id, "name": name, "unit": "Percent", "interval": "PT1H", "timespan": timespan, "data": data}
            for name, data in (("Percentage CPU", cpu), ("Available Memory Percentage", memory))]


def _add_pressure(vm: VmPlan, stamps: tuple[tuple[int, str], ...], series: list[Row],
                  draw: Callable[[], float]) -> None:
    """CPU above 90 % or free memory below 10 % from the policy's start hour into the next one."""
    start = _backup_hour_utc(_POLICY[vm.policy])
    busy = (start, (start + 1) % 24)
    for (hour, _), point in zip(stamps, series, strict=True):
        if hour not in busy:
            continue
        if vm.metrics == "cpu-high":
            point.update(average=_TENTHS[860 + int(draw() * 70)], maximum=_TENTHS[960 + int(draw() * 40)])
        else:
            point.update(average=_TENTHS[30 + int(draw() * 40)], maximum=_TENTHS[70 + int(draw() * 25)])


_TENTHS = tuple(i / 10 for i in range(1001))  # 0.0 .. 100.0: one shared float object per value


@functools.lru_cache(maxsize=4)
def _hour_stamps(start: datetime) -> tuple[tuple[int, str], ...]:
    """The 24 (UTC hour, ISO time) pairs from start; the strings are shared by every series."""
    return tuple(((start + timedelta(hours=h)).hour, _iso(start + timedelta(hours=h))) for h in range(24))


# --- small helpers ----------------------------------------------------------------------------


_lower = functools.lru_cache(maxsize=4096)(str.lower)  # one lowercase string per resource group


def _pick(rng: random.Random, options: tuple[str, ...]) -> str:
    """rng.choice without its rejection sampling: a third of the time for 100k VMs."""
    return options[int(rng.random() * len(options))]


def _guid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _name_guid(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, name))


@functools.lru_cache(maxsize=512)  # a few hundred distinct times recur in every estate
def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _public_address(index: int) -> str:
    return f"20.{50 + index // 65536 % 200}.{index // 256 % 256}.{index % 256}"


def _vm_id(sub: str, rg: str, name: str) -> str:
    return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines/{name}"


def _upper_rg(resource_id: str) -> str:
    """`.../resourceGroups/RG-APP-01/...`: how ARM spells back-references."""
    parts = resource_id.split("/")
    parts[4] = parts[4].upper()
    return "/".join(parts)


def _upper_tail(resource_id: str) -> str:
    """`.../resourceGroups/RG-APP-01/providers/Microsoft.Compute/AVAILABILITYSETS/AVSET-X`."""
    parts = _upper_rg(resource_id).split("/")
    parts[-2:] = [p.upper() for p in parts[-2:]]
    return "/".join(parts)


def _spell(resource_id: str, style: str) -> str:
    if style == "lower":
        return resource_id.lower()
    if style == "upper-rg":
        return _upper_rg(resource_id)
    return resource_id
