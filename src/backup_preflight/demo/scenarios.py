"""The demo estate's vocabulary: every failure mode as a `Scenario`, and the shape all VMs share.

Why: the `changes` of a scenario are the only place a failure mode is created, so a finding in a
demo report traces back to one line of this file; the estate-shape constants (regions, subnets,
NSGs, route tables, backup policies, versions) are the fixed menu the planner draws from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

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
    #: Policy id -> the status a correct scan gives this VM, where the answer key's default for the
    #: VM's plan does not derive it (tests/catalog/test_demo_answer_key.py compares every policy on
    #: every VM): a scenario the defaults do not cover declares its verdicts here, nothing else.
    verdicts: Mapping[str, str] = field(default_factory=dict)


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
    Scenario("os-profile-missing", AGENT, "unknown", 0.01, {"os_profile": False, "instance_view": False}),
    Scenario("os-profile-missing-agent-reports", AGENT, "pass", 0.005, {**_SEEN, "os_profile": False}),
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
    # backup-extension: the agent's handler and extension status in the instance view (today's platform
    # install); older VMs also or only as a VMSnapshot / VMSnapshotLinux resource in ARG
    Scenario("extension-failed", EXTENSION, "fail", 0.006,
             {**_SEEN, "extension": "Failed", "extension_source": "handler"}, True),
    Scenario("extension-failed-arm-only", EXTENSION, "fail", 0.002,
             {**_SEEN, "extension": "Failed", "extension_source": "arm"}, True),
    Scenario("extension-handler-not-reported", EXTENSION, "unknown", 0.002, {**_SEEN, "extension_source": "none"}),
    Scenario("extension-handler-not-ready", EXTENSION, "fail", 0.005, {**_SEEN, "handler_ready": False}, True),
    Scenario("extension-handler-old", EXTENSION, "fail", 0.004,
             {**_SEEN, "os": "Linux", "handler_version": "1.0.90.0"}),  # below the article's 1.0.91.0
    Scenario("extension-not-installed-yet", EXTENSION, "pass", 0.01,  # guest facts: EXT-004 on Windows
             {**_SEEN, "extension": None, "last_backup": None, "guestfacts": True}),
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
    # backup-protection: the item's state decides, not its existence
    Scenario("protection-stopped", PROTECTION, "fail", 0.006, {"protection_state": "ProtectionStopped"},
             verdicts={"VMBK-PROT-001": "fail"}),
    Scenario("protection-soft-deleted", PROTECTION, "fail", 0.003, {"protection_state": "SoftDeleted"},
             verdicts={"VMBK-PROT-001": "fail"}),
    Scenario("protection-error-still-scheduled", PROTECTION, "fail", 0.003,
             {"protection_state": "ProtectionError", "last_backup": "Failed"},
             verdicts={"VMBK-PROT-001": "pass", "VMBK-PROT-002": "fail"}),
    Scenario("moved-to-new-vault", PROTECTION, "pass", 0.01, {"old_item": True},
             verdicts={"VMBK-PROT-001": "pass", "VMBK-PROT-002": "pass"}),
    # outbound-connectivity, Azure's route and NSG semantics (showcase only: weight 0 keeps other draws)
    Scenario("route-halves-to-none", OUTBOUND, "fail", 0.0, {"subnet": "halves"}, True),
    Scenario("storage-endpoint-beats-blackhole", OUTBOUND, "pass", 0.0, {"subnet": "endpoint", "public_ip": False}),
    Scenario("private-allow-then-deny-internet", OUTBOUND, "fail", 0.0, {"nics": ("allow-private",)}, True),
)
_BY_NAME = {s.name: s for s in SCENARIOS}
_FULLY_OBSERVED = _BY_NAME["healthy-fully-observed"]
#: Every scenario once, plus a few fully observed healthy VMs so small estates show clean passes.
SHOWCASE: tuple[Scenario, ...] = (*(s for s in SCENARIOS if s.cause is not None), *(_FULLY_OBSERVED,) * 5)
CUMULATIVE_WEIGHTS = [sum(s.weight for s in SCENARIOS[: i + 1]) for i in range(len(SCENARIOS))]

#: Report-escaping probes, carried in a tag and the guest names of these scenarios' showcase VMs.
MARKUP = {"agent-old-linux": "<script>alert(1)</script>",
          "nic-nsg-denies-storage": '"><img src=x onerror=alert(1)>'}



@dataclass(frozen=True, slots=True)
class SlotLayout:
    """schedule-spread is per group, not per VM: the first `size` VMs of a resource group share one
    availability set and take `policies` in turn; the first `stopped` of them have their protection
    stopped (they must not count)."""

    name: str
    policies: tuple[str, ...]
    size: int
    stopped: int = 0


#: One resource group each, in this order, as soon as a subscription has room for it (in the 60-VM
#: demo: the first three, one per subscription; the crowded ones come first, before the showcase's
#: unprotected VMs could thin them). Verdicts in the comments are for northern winter; collected in
#: July, daylight saving moves some of them.
LAYOUTS = (
    # 02:00 UTC, 02:00 London, 03:00 Amsterdam, 03:00 Paris: one instant, 14 VMs -> crowded
    SlotLayout("crowded-one-instant-four-zones",
               ("DailyPolicy-0200", "Daily-0200-GMT", "Daily-0300-CET", "Daily-0300-Romance"), 14),
    # hourly 08:00 Amsterdam every 4h (07, 11, 15, 19 UTC) meets a daily 11:00 UTC: 13 VMs at 11:00
    SlotLayout("hourly-meets-daily", ("Enhanced-Hourly-4h", "Daily-1100-UTC"), 13),
    # 01:00 in four zones: four instants, 3 VMs each -> not crowded
    SlotLayout("one-local-time-four-zones",
               ("Daily-0100-UTC", "Daily-0100-CET", "Enhanced-0100-PST", "Daily-0100-AEST"), 12),
    # 13 items in one slot, 3 of them stopped: 10 active -> not crowded
    SlotLayout("stopped-items-not-counted", ("DailyPolicy-0200",), 13, stopped=3),
    # weekly at 02:00 UTC, on Saturday (V1) and on Sunday (V2): 7 VMs a day -> not crowded (14 if every day)
    SlotLayout("weekly-on-different-days", ("Weekly-Sat-0200", "Weekly-Sun-0200"), 14),
)
CROWD_SIZE = LAYOUTS[0].size
CROWD_SHARE = 0.06  # of the resource groups large enough once every layout is placed: more crowds

# ---------------------------------------------------------------------------------------------
# Estate shape
# ---------------------------------------------------------------------------------------------

VMS_PER_SUBSCRIPTION = 4000
VMS_PER_REGION = 3000
REGIONS = {"westeurope": "WestEurope", "eastus2": "EastUS2", "northeurope": "NorthEurope",
           "uksouth": "UKSouth", "swedencentral": "SwedenCentral", "centralus": "CentralUS"}
WORKLOADS = ("App", "Web", "Data", "Crm", "Erp", "Portal", "Payments", "Analytics")
#: Display names of the first subscriptions; later ones are numbered landing zones.
SUBSCRIPTION_NAMES = ("Contoso Production", "Contoso Development", "Contoso Shared Services")
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
    "halves": ("snet-tunnel-halves", "default", "halves", None, False),
    "endpoint": ("snet-storage-endpoint", "default", "blackhole", False, False),
}
#: Azure's region pairs, for service endpoints' `locations` (the VNet's region and its pair).
PAIRED_REGIONS = {"westeurope": "northeurope", "northeurope": "westeurope", "eastus2": "centralus",
                  "centralus": "eastus2", "uksouth": "ukwest", "swedencentral": "swedensouth"}
#: subnet kind -> its service endpoints (Microsoft.Storage for the region and its pair)
SERVICE_ENDPOINTS = {"endpoint": ("Microsoft.Storage", "Microsoft.KeyVault")}
SUBNET_INDEX = {kind: i for i, kind in enumerate(SUBNETS)}
SUBNET_NSGS = ("default", "restricted")
NIC_NSGS = ("standard", "deny-storage", "deny-plural", "allow-web", "storage-first", "allow-private")
ROUTE_TABLES = ("onprem", "blackhole", "firewall", "halves")


@dataclass(frozen=True, slots=True)
class PolicySpec:
    """A backup policy every vault carries; `hour` is the local start (time of day or hourly window)."""

    name: str
    version: str  # "V1" (policyType key absent), "V1-explicit", "V2" or "V2-hourly"
    time_zone: str
    hour: int
    minute: int = 0
    days: tuple[str, ...] = ()  # a weekly policy's days (scheduleRunDays); none: daily


POLICIES = (
    PolicySpec("DailyPolicy-0200", "V1", "UTC", 2),
    PolicySpec("DefaultPolicy", "V1-explicit", "UTC", 20, 30),
    PolicySpec("Daily-2300-CET", "V1", "W. Europe Standard Time", 23),
    PolicySpec("Enhanced-0100-PST", "V2", "Pacific Standard Time", 1),
    PolicySpec("Enhanced-0400", "V2", "UTC", 4),
    PolicySpec("Enhanced-Hourly-4h", "V2-hourly", "W. Europe Standard Time", 8),
)
#: Policies only the slot layouts use, so that ordinary resource groups never crowd by accident.
LAYOUT_POLICIES = (
    PolicySpec("Daily-0200-GMT", "V1", "GMT Standard Time", 2),
    PolicySpec("Daily-0300-CET", "V2", "W. Europe Standard Time", 3),
    PolicySpec("Daily-0300-Romance", "V1", "Romance Standard Time", 3),
    PolicySpec("Daily-0100-UTC", "V1", "UTC", 1),
    PolicySpec("Daily-0100-CET", "V1", "W. Europe Standard Time", 1),
    PolicySpec("Daily-0100-AEST", "V2", "AUS Eastern Standard Time", 1),
    PolicySpec("Daily-1100-UTC", "V1-explicit", "UTC", 11),
    PolicySpec("Weekly-Sat-0200", "V1", "UTC", 2, days=("Saturday",)),
    PolicySpec("Weekly-Sun-0200", "V2", "UTC", 2, days=("Sunday",)),
)
ALL_POLICIES = POLICIES + LAYOUT_POLICIES
POLICY_BY_NAME = {p.name: p for p in ALL_POLICIES}
#: Windows time zone -> IANA zone, for the zones the demo's policies use.
IANA_ZONES = {"UTC": "UTC", "W. Europe Standard Time": "Europe/Berlin", "Pacific Standard Time": "America/Los_Angeles",
              "GMT Standard Time": "Europe/London", "Romance Standard Time": "Europe/Paris",
              "AUS Eastern Standard Time": "Australia/Sydney"}

LINUX_AGENTS = ("2.11.1.4", "2.10.0.8", "2.9.1.1", "2.2.53.1")
WINDOWS_AGENTS = ("2.7.41491.1102", "2.7.41491.1083", "2.7.41491.1010")
SNAPSHOT_HANDLERS = ("1.0.9117.0", "1.0.9152.0")
VM_SIZES = ("Standard_D2s_v5", "Standard_D4s_v5", "Standard_B2ms")
ENVS = ("prod", "prod", "test", "dev")
OWNERS = ("platform@contoso.com", "erp-team@contoso.com", "web-team@contoso.com", "data@contoso.com")
