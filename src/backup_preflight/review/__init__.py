"""The review step between engine and results: exemptions, then the baseline comparison.

It changes statuses only by turning fail/unknown/error into `exempt` (keeping the real verdict)
and adds annotations; it never judges a VM itself.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from backup_preflight.findings import Finding
from backup_preflight.review import baseline as baseline_mod
from backup_preflight.review import exemptions as exemptions_mod
from backup_preflight.timestamps import parse_instant


@dataclass(slots=True)
class Review:
    """What the user asked to apply: an exemptions file, a baseline, and whether only new failures gate."""

    exemptions: exemptions_mod.ExemptionFile | None = None
    baseline: baseline_mod.Baseline | None = None
    fail_on_new: bool = False

    def apply(self, findings: Sequence[Finding], as_of: str, policy_ids: Collection[str] = ()) -> dict[str, Any]:
        """Annotate findings in place; return run metadata (`exemptions`, `baseline`) for results.json.
        `policy_ids` are the scan's policies, which an exemption's policy ids are checked against.

        `as_of` is an ISO timestamp (the scan start): exemptions expire relative to it, so a
        re-evaluation by `verify` judges expiry exactly as the original scan did.
        """
        meta: dict[str, Any] = {}
        if self.exemptions is not None:
            when = parse_instant(as_of)  # a recorded start without an offset is UTC, as every time the tool reads
            assert when is not None  # the scan's own start, or one results_reader.check has read
            meta["exemptions"] = exemptions_mod.apply(findings, self.exemptions, when, policy_ids)
        if self.baseline is not None:
            meta["baseline"] = baseline_mod.apply(findings, self.baseline, self.fail_on_new)
        return meta
