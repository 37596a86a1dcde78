"""The pre-deployment gate: overlay an ARM/Bicep what-if on a snapshot and blame new failures on changes.

`load_what_if` reads `az deployment … what-if --no-pretty-print` output or the REST response;
`overlay` predicts the estate after the deployment; `compare` and `blame` tell which failures the
deployment introduces and which planned change can have caused each. All pure apart from reading
the file; the CLI wires them into `scan --what-if`.
"""

from backup_preflight.whatif.blame import Comparison, blame, compare, related_resources
from backup_preflight.whatif.describe import PlannedChange
from backup_preflight.whatif.overlay import overlay
from backup_preflight.whatif.parse import Change, WhatIf, load_what_if, load_what_ifs

__all__ = ["Change", "Comparison", "PlannedChange", "WhatIf", "blame", "compare", "load_what_if",
           "load_what_ifs", "overlay", "related_resources"]
