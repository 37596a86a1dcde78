"""What the guest observed against what the network model concluded, on the outbound findings.

The model (NSGs, routes, default outbound access) decides VMBK-NET-001; an in-guest probe that
tried a TCP connect to a Storage endpoint on 443 (`guest.storageReachable`) is a second, observed
opinion. They can disagree for reasons the model cannot see (a proxy, an NVA, a guest firewall,
DNS). The verdict stays the model's; the finding records the observation (`observedInGuest`) and,
when the two disagree, says so in its message and evidence, with both sides.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from backup_preflight.findings import FAIL, PASS, Finding
from backup_preflight.policy.loader import Policy

OUTBOUND_CAUSE = "outbound-connectivity"
PROBED_PORT = 443


def probed_policies(policies: Iterable[Policy]) -> set[str]:
    """Ids of outbound policies whose question the probe's connect answers: TCP 443 to Storage."""
    out = set()
    for policy in policies:
        ports = policy.parameters.get("ports") or []
        targets = policy.parameters.get("destinations") or []
        if (policy.cause == OUTBOUND_CAUSE and PROBED_PORT in ports
                and any(isinstance(t, str) and t.lower().startswith("storage") for t in targets)):
            out.add(policy.id)
    return out


def probed_vms(vms: list[dict[str, Any]]) -> set[str]:
    """The lowercase ids of the VMs with an in-guest connect: note_observations may change the findings that name
    them, which the engine must therefore give as objects (engine.evaluate_held)."""
    return {vm["id"].lower() for vm in vms if isinstance(_reached(vm.get("guest")), bool)}


def _reached(guest: Any) -> Any:
    return guest.get("storageReachable") if isinstance(guest, dict) else None


def note_observations(findings: Iterable[Finding], policies: Iterable[Policy], vms: list[dict[str, Any]]) -> None:
    """Annotate the probed outbound findings with the guest's connect, and say where they disagree."""
    ids = probed_policies(policies)
    guest = {vm["id"].lower(): vm["guest"] for vm in vms if isinstance(vm.get("guest"), dict)}
    for finding in findings:
        if finding.policy_id not in ids or finding.status not in (PASS, FAIL):
            continue
        facts = guest.get(finding.resource_id.lower()) or {}
        reached = _reached(facts)
        if not isinstance(reached, bool):
            continue
        endpoint = facts.get("storageEndpoint") or "a Storage endpoint"
        when = f" at {facts['collectedAt']}" if isinstance(facts.get("collectedAt"), str) else ""
        agrees = reached == (finding.status == PASS)
        finding.annotate("observedInGuest", {"storageReachable": reached, "endpoint": endpoint,
                                             "collectedAt": facts.get("collectedAt"), "agrees": agrees})
        if agrees:
            continue
        seen = (f"in-guest probe{when}: TCP connect to {endpoint} "
                + ("succeeded" if reached else "failed"))
        finding.evidence = (*finding.evidence, f"disagreement: {seen}")
        if finding.status == PASS:
            finding.message = (f"Disagreement on {finding.resource_name}: the NSG/route model allows outbound "
                               f"TCP 443 to Storage, but the {seen} (a guest firewall, proxy, DNS or a device "
                               "the model does not see may block it)")
        else:
            finding.message += (f"; disagreement: the {seen} (an egress path the model does not see, e.g. a "
                                "proxy or firewall, may allow it: if so, set egressDeviceDeclared=true)")
