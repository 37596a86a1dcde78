"""Planning the demo estate: decide everything about every VM before any row is rendered.

Why: one random stream, consumed in a fixed order, makes every estate reproducible from its seed;
keeping the decisions in plain dataclasses (`Site`, `VmPlan`, `Estate`) lets tests check what was
planned and leaves the row builders nothing to decide.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from backup_preflight.demo.scenarios import (
    ALL_POLICIES,
    CROWD_SHARE,
    CROWD_SIZE,
    CUMULATIVE_WEIGHTS,
    ENVS,
    HEALTHY_SUBNETS,
    LAYOUTS,
    LINUX_AGENTS,
    MARKUP,
    NIC_NSGS,
    OWNERS,
    POLICIES,
    REGIONS,
    SCENARIOS,
    SHOWCASE,
    SNAPSHOT_HANDLERS,
    SUBNET_INDEX,
    SUBNET_NSGS,
    SUBNETS,
    VM_SIZES,
    VMS_PER_REGION,
    VMS_PER_SUBSCRIPTION,
    WINDOWS_AGENTS,
    WORKLOADS,
    Scenario,
    SlotLayout,
)


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
        self.policy_ids = {p.name: f"{self.vault_id}/backupPolicies/{p.name}" for p in ALL_POLICIES}

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

    @property
    def old_vault_id(self) -> str:
        """The vault VMs were moved out of: it keeps their stopped items."""
        return f"{self.vault_id}-old"

    def policy_id(self, name: str) -> str:
        return self.policy_ids[name]

    def next_ip(self, kind: str) -> str:
        """Sequential private IPs per subnet (a /20 each; wraps only in absurd one-subnet estates)."""
        host = 4 + self.hosts[kind] % 4091
        self.hosts[kind] += 1
        base = SUBNET_INDEX[kind] * 16
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
    extension: str | None = "Succeeded"  # provisioningState of VMSnapshot(Linux); None = not installed
    #: Where Azure shows the installed extension: "handler" (the agent's handler and extension status in the
    #: instance view: today's platform install), "both" (also an ARM resource), "arm" (older VMs: only the ARM
    #: resource), "none" (installed, but the agent stopped reporting it).
    extension_source: str = "handler"
    handler_version: str = SNAPSHOT_HANDLERS[0]
    handler_ready: bool = True
    protected: bool = True
    #: protectionState of the item: Protected, ProtectionStopped, SoftDeleted, ProtectionError
    protection_state: str = "Protected"
    old_item: bool = False  # a stopped item in the site's old vault besides the active one
    layout: str | None = None  # the SlotLayout whose group the VM is in
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
    layouts: list[str] = field(default_factory=list)  # the LAYOUTS placed so far, in order


# ---------------------------------------------------------------------------------------------
# Planning: decide everything about every VM, consuming the random stream in a fixed order
# ---------------------------------------------------------------------------------------------


def plan_estate(vms: int, seed: int, subscriptions: int | None = None,
                collected_at: datetime | None = None) -> Estate:
    """Place VMs in subscriptions, regions and resource groups, and give each a scenario.

    `collected_at` (default: a November morning drawn from the seed) is when the estate is collected:
    metrics, last backups and the daylight saving of every schedule follow it.
    """
    rng = random.Random(seed)
    tenant = _guid(rng)
    count = subscriptions or max(1, -(-vms // VMS_PER_SUBSCRIPTION))
    subs = [_guid(rng) for _ in range(count)]
    when = collected_at or datetime(2026, 11, 24, 6, tzinfo=UTC) + timedelta(minutes=seed % 360)
    estate = Estate(seed, tenant, when.astimezone(UTC).replace(second=0, microsecond=0), subs, [], [], {})
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
    """Fill one subscription with resource groups of ~20 VMs, some laid out on backup slots (LAYOUTS)."""
    ordinal = 0
    largest = max(6, vms // 3)  # small (demo) subscriptions still get several resource groups
    while vms > 0:
        size = min(rng.randint(8, 32), largest)
        layout = _next_layout(estate, rng, size, vms)
        size = min(vms, max(size, layout.size) if layout else size)
        rg = f"RG-{WORKLOADS[ordinal % len(WORKLOADS)]}-{ordinal + 1:02d}"
        site = sites[ordinal % len(sites)]
        spread_set = f"avset-{rg[3:].lower()}" if rng.random() < 0.3 else None
        for pos in range(size):
            index = len(estate.vms)
            scenario = showcase.get(index) or rng.choices(SCENARIOS, cum_weights=CUMULATIVE_WEIGHTS)[0]
            policy = POLICIES[(pos + ordinal) % len(POLICIES)].name  # neighbours on different slots
            plan = _plan_vm(rng, index, scenario, site, rg, width, policy)
            if layout and pos < layout.size:
                plan.policy = layout.policies[pos % len(layout.policies)]
                plan.avset, plan.layout = f"avset-{rg[3:].lower()}-batch", layout.name
                if pos < layout.stopped and plan.protected:
                    plan.protection_state = "ProtectionStopped"
            elif spread_set and pos % 3 == 0:
                plan.avset = spread_set
            if index in showcase and scenario.name in MARKUP:
                plan.markup = MARKUP[scenario.name]
                plan.tags["owner"] = plan.markup
            if plan.avset:
                estate.avsets.setdefault(avset_id(plan), []).append(plan)
            estate.vms.append(plan)
        vms -= size
        ordinal += 1


def _next_layout(estate: Estate, rng: random.Random, size: int, room: int) -> SlotLayout | None:
    """Each layout once, in order, in the first resource group with room for it; then random crowds."""
    if len(estate.layouts) < len(LAYOUTS):
        pending = LAYOUTS[len(estate.layouts)]
        if room < pending.size:
            return None
        estate.layouts.append(pending.name)
        return pending
    return LAYOUTS[0] if size >= CROWD_SIZE and rng.random() < CROWD_SHARE else None


def _plan_vm(rng: random.Random, index: int, scenario: Scenario, site: Site, rg: str, width: int,
             policy: str) -> VmPlan:
    """A healthy VM with natural variation, then the scenario's changes, then their consequences."""
    changes = scenario.changes
    sql = changes.get("sql", "os" not in changes and rng.random() < 0.04)
    os = "Windows" if sql else changes.get("os") or _pick(rng, ("Linux", "Linux", "Windows"))
    role = "sql" if sql else _pick(rng, ("web", "app", "api") if os == "Linux" else ("app", "iis", "file"))
    name = f"vm-{role}-{index + 1:0{width}d}"
    plan = VmPlan(index=index, name=name, id=vm_id(site.sub, rg, name), scenario=scenario.name, site=site,
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
    # Not drawn (the random stream stays as it was): a fifth of the VMs also carry the ARM resource, and
    # some older VMs whose instance view was not collected show it only there.
    plan.extension_source = ("both" if index % 5 == 0 else "arm" if index % 7 == 3 and not plan.instance_view
                             else "handler")
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


# --- ids and draws ----------------------------------------------------------------------------


def avset_id(vm: VmPlan) -> str:
    return (f"/subscriptions/{vm.site.sub}/resourceGroups/{vm.rg}"
            f"/providers/Microsoft.Compute/availabilitySets/{vm.avset}")


def _pick(rng: random.Random, options: tuple[str, ...]) -> str:
    """rng.choice without its rejection sampling: a third of the time for 100k VMs."""
    return options[int(rng.random() * len(options))]


def _guid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def vm_id(sub: str, rg: str, name: str) -> str:
    return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines/{name}"
