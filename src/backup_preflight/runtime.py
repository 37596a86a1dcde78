"""The versions that shape a verdict, recorded in results.json so a run can be reproduced.

The azure SDKs decide what is collected, jsonschema what input is accepted, msgspec how it is
parsed, tzdata and tzlocal when a backup schedule fires. constraints.txt pins all of them.
"""

from __future__ import annotations

import platform
from functools import cache
from importlib import metadata
from typing import Any

from backup_preflight import __version__

VERDICT_LIBRARIES = ("azure-core", "azure-identity", "azure-mgmt-compute", "azure-mgmt-recoveryservicesbackup",
                     "azure-mgmt-resourcegraph", "jsonschema", "msgspec", "tzdata", "tzlocal")


@cache
def versions() -> dict[str, Any]:
    """{"name", "version", "python", "libraries": {distribution: version or null when absent}}."""
    libraries: dict[str, str | None] = {}
    for name in VERDICT_LIBRARIES:
        try:
            libraries[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            libraries[name] = None
    return {"name": "backup-preflight", "version": __version__, "python": platform.python_version(),
            "libraries": libraries}
