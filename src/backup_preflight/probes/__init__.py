"""The in-guest probe scripts we ship, and reading what they print back into `guestfacts` rows.

The scripts print one JSON object marked `"probe": "backup-preflight/1"`. It reaches us either
as a file (Intune, Ansible, Azure Automation: one object per VM or a list, read by `--snapshot`)
or inside a Run Command result, whose shape differs per OS: Linux puts stdout and stderr in one
status message (`Enable succeeded: \\n[stdout]\\n...\\n[stderr]\\n...`), Windows in two statuses
(`ComponentStatus/StdOut/succeeded`, `ComponentStatus/StdErr/succeeded`).
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

MARKER = "backup-preflight/1"
SCRIPTS = {"linux": "linux.sh", "windows": "windows.ps1"}
#: Keys of the printed object that identify it rather than describe the guest.
_ENVELOPE = ("probe", "vmId", "collectedAt")


def script(os_name: str) -> str:
    """The probe script for `linux` or `windows`, as shipped."""
    return resources.files(__name__).joinpath(SCRIPTS[os_name.lower()]).read_text("utf-8")


def with_environment(os_name: str, env: dict[str, str]) -> str:
    """The script preceded by assignments of `env` (our own values, quoted for the shell)."""
    return "\n".join([*environment_lines(os_name, env), script(os_name)])


def environment_lines(os_name: str, env: dict[str, str]) -> list[str]:
    """Lines that set `env` in the script's shell, each value single-quoted (nothing in it expands)."""
    if os_name.lower() == "windows":
        return [f"$env:{k} = '{_quoted(v, QUOTE_PS)}'" for k, v in env.items()]
    return [f"{k}='{_quoted(v, QUOTE_SH)}'; export {k}" for k, v in env.items()]


QUOTE_SH = "'\\''"  # sh: close the quote, an escaped quote, reopen
QUOTE_PS = "''"  # PowerShell: a doubled quote inside single quotes


def _quoted(value: str, quote: str) -> str:
    return value.replace("'", quote)


def is_probe_output(doc: Any) -> bool:
    """Whether a parsed JSON value is one probe's object, or a non-empty list of them."""
    if isinstance(doc, list):
        return bool(doc) and all(isinstance(d, dict) and d.get("probe") == MARKER for d in doc)
    return isinstance(doc, dict) and doc.get("probe") == MARKER


def to_row(doc: dict[str, Any], vm_id: str | None = None) -> dict[str, Any]:
    """A `guestfacts` row from one probe object; `vm_id` (the runner's) wins over the printed one."""
    row: dict[str, Any] = {"id": vm_id or doc.get("vmId"),
                           "facts": {k: v for k, v in doc.items() if k not in _ENVELOPE}}
    if isinstance(doc.get("collectedAt"), str):
        row["collectedAt"] = doc["collectedAt"]
    return row


def streams(statuses: list[dict[str, Any]]) -> tuple[str, str]:
    """(stdout, stderr) from a Run Command result's `value`, in either OS's shape."""
    out, err = [], []
    for status in statuses:
        code = str(status.get("code") or "")
        message = str(status.get("message") or "")
        if "/StdOut/" in code:
            out.append(message)
        elif "/StdErr/" in code:
            err.append(message)
        elif "[stdout]" in message:
            body = message.split("[stdout]", 1)[1]
            stdout, _, stderr = body.partition("[stderr]")
            out.append(stdout)
            err.append(stderr)
        else:
            err.append(message)
    return "\n".join(out).strip(), "\n".join(err).strip()


def parse_streams(stdout: str) -> dict[str, Any] | None:
    """The last line of stdout that is a probe object; None when the script printed none."""
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if is_probe_output(doc):
            return doc
    return None
