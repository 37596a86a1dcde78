"""Native CI integration: GitHub Actions annotations and step summary, Azure DevOps logging commands.

`--ci auto` recognises GitHub Actions by `GITHUB_ACTIONS=true` and Azure Pipelines by
`TF_BUILD=True`. Both runners read commands from the job log: GitHub a line starting with `::`,
the Azure agent any line containing `##vso[`. Azure-provided text (VM names, messages) is untrusted:
it is made safe as every report's is (text.safe: secrets redacted, controls and bidi overrides shown as
escapes), then goes through the platform's own escaping — newlines become `%0A`, so nothing can
start a second command line — and the other platform's command marker is broken up as well.
Only the worst findings are annotated (`--ci-annotations N`); the reports have all of them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TextIO

from backup_preflight.findings import ERROR, FAIL, SEVERITY_RANK, Finding, with_status
from backup_preflight.results import ScanResult
from backup_preflight.text import safe

PLATFORMS = ("auto", "github", "azure-devops", "none")
#: Annotations per kind (errors, warnings); GitHub shows ten of each per step in the UI.
DEFAULT_ANNOTATIONS = 10
#: Cap on one annotation's text; the rest is in the reports.
TEXT_LIMIT = 2000


def detect(choice: str, env: Mapping[str, str]) -> str:
    """The platform to talk to: the one asked for, or with `auto` the one whose variables are set."""
    if choice != "auto":
        return choice
    if env.get("GITHUB_ACTIONS", "").lower() == "true":
        return "github"
    if env.get("TF_BUILD", "").lower() == "true":
        return "azure-devops"
    return "none"


def _defuse(text: str) -> str:
    """Break up both platforms' command markers inside a value (U+200B between the characters)."""
    return text.replace("##vso[", "##\u200bvso[").replace("##[", "##\u200b[").replace("::", ":\u200b:")


def github_data(text: str) -> str:
    """GitHub's workflow-command escaping of a message (as @actions/core's escapeData)."""
    text = _defuse(text[:TEXT_LIMIT])
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def github_property(text: str) -> str:
    """GitHub's escaping of a property value (escapeProperty): also `:` and `,`."""
    return github_data(text).replace(":", "%3A").replace(",", "%2C")


def azure_data(text: str) -> str:
    """Azure Pipelines' escaping of a logging command's message (azure-pipelines-task-lib)."""
    text = _defuse(text[:TEXT_LIMIT])
    return text.replace("%", "%AZP25").replace("\r", "%0D").replace("\n", "%0A")


def azure_property(text: str) -> str:
    """Azure Pipelines' escaping of a property value: also `;` and `]`."""
    return azure_data(text).replace(";", "%3B").replace("]", "%5D")


def annotations(result: ScanResult, limit: int) -> Iterator[tuple[str, str, str, str]]:
    """(kind, code, title, message), title and message made safe (text.safe): coverage problems and gate
    failures as errors, other failures as warnings, worst first, at most `limit` of each kind, then one line
    saying how many were left out."""
    for kind, code, title, message in _annotations(result, limit):
        yield kind, code, safe(title, keep_newlines=True), safe(message, keep_newlines=True)


def _annotations(result: ScanResult, limit: int) -> Iterator[tuple[str, str, str, str]]:
    for e in result.coverage["errors"][:limit]:
        yield ("error", "coverage", "not collected",
               f"{e.get('scope', '?')} [{e.get('table', '?')}]: {e.get('message', '')}")
    failing = sorted(with_status(result.findings, (FAIL, ERROR)),
                     key=lambda f: (SEVERITY_RANK[f.severity], f.policy_id, f.resource_id.lower()))
    shown = {"error": 0, "warning": 0}
    left = 0
    for f in failing:
        kind = "error" if result.gate.is_failing(f) else "warning"
        if shown[kind] >= limit:
            left += 1
            continue
        shown[kind] += 1
        yield kind, f.policy_id, _title(f, result.subscription_name(f.subscription_id)), f.message
    if left:
        yield "warning", "more", "more findings", f"{left} more failing findings are not annotated; see report.html"


def _title(f: Finding, subscription_name: str) -> str:
    """Policy, severity and VM, with where the VM is: its subscription by display name when known."""
    where = ", ".join(p for p in (f.resource_group, subscription_name or f.subscription_id) if p)
    return f"{f.policy_id} ({f.severity}) {f.resource_name}" + (f" ({where})" if where else "")


def emit(result: ScanResult, platform: str, summary: Path | None, out: TextIO, env: Mapping[str, str],
         limit: int = DEFAULT_ANNOTATIONS) -> None:
    """Write the platform's commands to `out` (the job log) and hand it the Markdown summary."""
    if platform == "github":
        for kind, _, title, message in annotations(result, limit):
            out.write(f"::{kind} title={github_property(title)}::{github_data(message)}\n")
        target = env.get("GITHUB_STEP_SUMMARY")
        if summary is not None and target:
            with open(target, "a", encoding="utf-8") as step:
                step.write(summary.read_text(encoding="utf-8") + "\n")
    elif platform == "azure-devops":
        for kind, code, title, message in annotations(result, limit):
            text = azure_data(f"{title}: {message}")
            out.write(f"##vso[task.logissue type={kind};code={azure_property(code)}]{text}\n")
        if summary is not None:
            out.write(f"##vso[task.uploadsummary]{azure_data(str(summary.resolve()))}\n")
