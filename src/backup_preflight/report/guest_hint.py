"""What the in-guest probe adds to the summaries: the policies left unknown without it, and where
what it observed contradicts the network model.

DHCP, VSS copy backup and the IaaSVmProvider service can only be read inside the guest, so a
scan without probe results leaves them unknown on every VM; the reports say so once, with the
two ways to fill the gap, instead of leaving the user to read each unknown finding. A probe that
could not reach Storage on a VM the model passes changes no verdict, so it would show nowhere but
results.json: the summaries name those VMs too.
"""

from __future__ import annotations

from collections import Counter
from operator import attrgetter

from backup_preflight.findings import PASS, UNKNOWN, annotated, with_status
from backup_preflight.results import ScanResult

HOW = ("collect them with `--probe-guest` (runs the probe through Run Command; needs "
       "Microsoft.Compute/virtualMachines/runCommand/action), or run `backup-preflight probe-script --os "
       "linux|windows` with your own tools and add its output with `--snapshot`")


def waiting_for_guest(result: ScanResult) -> list[tuple[str, int]]:
    """(policy id, VMs) of unknown findings whose missing fact is an in-guest one, by policy id."""
    counts: Counter[str] = Counter()
    # Counted by (policy, evidence) in C first: millions of unknown findings share a few hundred evidences.
    pairs = Counter(map(_POLICY_AND_EVIDENCE, with_status(result.findings, (UNKNOWN,))))
    for (policy_id, evidence), n in pairs.items():
        if any(e.startswith("guest.") and e.endswith(" was not collected") for e in evidence):
            counts[policy_id] += n
    return sorted(counts.items())


_POLICY_AND_EVIDENCE = attrgetter("policy_id", "evidence")


def sentence(result: ScanResult, code: str = "`") -> str | None:
    """One sentence naming those policies and how to collect their facts; None when there are none."""
    waiting = waiting_for_guest(result)
    if not waiting:
        return None
    listed = ", ".join(f"{pid} ({count} VM{'s' if count != 1 else ''})" for pid, count in waiting)
    how = HOW if code == "`" else HOW.replace("`", code)
    return f"Unknown for want of in-guest facts: {listed}; {how}."


def disagreement_sentence(result: ScanResult, limit: int = 5) -> str | None:
    """The outbound findings on which the probe's connect contradicts the model, or None."""
    odd = [f for f in annotated(result.findings) if f.annotations.get("observedInGuest", {}).get("agrees") is False]
    if not odd:
        return None
    named = ", ".join(f"{f.resource_name} ({f.policy_id}: model "
                      + ("allows, the connect failed" if f.status == PASS else "blocks, the connect succeeded") + ")"
                      for f in odd[:limit])
    more = f" and {len(odd) - limit} more" if len(odd) > limit else ""
    return (f"The in-guest probe disagrees with the network model on {len(odd)} outbound finding"
            f"{'s' if len(odd) != 1 else ''}: {named}{more}; see their evidence.")
