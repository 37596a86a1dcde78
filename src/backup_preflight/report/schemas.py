"""The JSON Schemas shipped with the package, by name, for `backup-preflight schema NAME` and editors."""

from __future__ import annotations

from importlib import resources

#: Name → (package, file): each schema lives beside the code that reads or writes that document.
SCHEMAS = {
    "results": ("backup_preflight.report", "results.schema.json"),
    "snapshot": ("backup_preflight", "snapshot.schema.json"),
    "exemptions": ("backup_preflight.review", "exemptions.schema.json"),
    "policy": ("backup_preflight.policies", "policy.schema.json"),
    "facts": ("backup_preflight.estate", "facts.schema.json"),
}


def text(name: str) -> str:
    package, file = SCHEMAS[name]
    return resources.files(package).joinpath(file).read_text(encoding="utf-8")
