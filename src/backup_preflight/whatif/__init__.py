"""The pre-deployment gate: overlay an ARM/Bicep what-if on a snapshot and blame new failures on changes.

`load_what_if` reads `az deployment … what-if --no-pretty-print` output or the REST response;
`overlay` predicts the estate after the deployment; the scan of the current estate becomes the
baseline of the predicted one (review.baseline), and `blame` tells which planned change can have
caused each new failure. All pure apart from reading the file; `scan --what-if` wires them (gate.py).
"""

from backup_preflight.whatif.blame import blame, related_resources
from backup_preflight.whatif.describe import PlannedChange
from backup_preflight.whatif.overlay import overlay
from backup_preflight.whatif.parse import Change, WhatIf, load_what_if, load_what_ifs

__all__ = ["Change", "PlannedChange", "WhatIf", "blame", "load_what_if", "load_what_ifs", "overlay",
           "related_resources"]
