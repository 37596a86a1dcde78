"""CI integration through the installed console script, driven by the runners' environment variables."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from backup_preflight.report import ci
from scan_helpers import estate, write_snapshot

from cli_helpers import SCRIPT

HOSTILE = "vm-evil\n::error::pwned\r\n##vso[task.setvariable variable=x]1 50%;a]b,c:d"


def scan(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    doc = estate(extra=[HOSTILE, *(f"vm-x{i:02}" for i in range(14))])
    snap = write_snapshot(tmp_path / "s.json", doc)
    clean = {k: v for k, v in os.environ.items() if k not in ("GITHUB_ACTIONS", "TF_BUILD", "GITHUB_STEP_SUMMARY")}
    return subprocess.run([str(SCRIPT), "scan", "--snapshot", str(snap), "--output-dir", str(tmp_path / "out"), *args],
                          capture_output=True, text=True, timeout=300, env={**clean, **env})


@pytest.mark.parametrize(("env", "want"), [
    ({"GITHUB_ACTIONS": "true"}, "github"), ({"TF_BUILD": "True"}, "azure-devops"),
    ({"GITHUB_ACTIONS": "false", "TF_BUILD": ""}, "none"), ({}, "none")])
def test_auto_detects_the_runner(env: dict[str, str], want: str) -> None:
    assert ci.detect("auto", env) == want
    assert ci.detect("none", {"GITHUB_ACTIONS": "true"}) == "none"


def test_escaping_follows_each_platform() -> None:
    assert ci.github_data("50% done\r\nnext") == "50%25 done%0D%0Anext"
    assert ci.github_property("a:b,c\nd") == "a%3Ab%2Cc%0Ad"
    assert ci.azure_data("50% done\r\nnext") == "50%AZP25 done%0D%0Anext"
    assert ci.azure_property("a;b]c\nd") == "a%3Bb%5Dc%0Ad"
    for escape in (ci.github_data, ci.github_property, ci.azure_data, ci.azure_property):
        out = escape("x ##vso[task.complete result=Failed] ::error::y")
        assert "##vso[" not in out and "::" not in out


def test_github_annotations_and_step_summary(tmp_path: Path) -> None:
    step = tmp_path / "step-summary.md"
    step.write_text("earlier step\n")
    done = scan(tmp_path, {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(step)}, "--ci-annotations", "5")
    assert done.returncode == 1, done.stderr
    commands = [line for line in done.stdout.splitlines() if line.startswith("::")]
    assert all(re.fullmatch(r"::(error|warning) title=[^:,\n]*::[^\n]*", c) for c in commands), commands
    errors = [c for c in commands if c.startswith("::error")]
    assert len(errors) == 5, "at most N errors"
    assert commands[-1].startswith("::warning title=more findings::") and " more failing findings" in commands[-1]
    assert not any("pwned" in line and not line.startswith("::") for line in done.stdout.splitlines())
    evil = [c for c in done.stdout.splitlines() if "vm-evil" in c]
    assert evil, "the hostile name is escaped, not dropped"
    for line in evil:
        assert line.startswith("::") and "%0A" in line and "##vso[" not in line
    assert step.read_text().startswith("earlier step\n")
    assert (tmp_path / "out" / "summary.md").read_text() in step.read_text()


def test_azure_devops_logging_commands_and_summary(tmp_path: Path) -> None:
    done = scan(tmp_path, {"TF_BUILD": "True"})
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    commands = [line for line in lines if "##vso[" in line]
    assert all(line.count("##vso[") == 1 and line.startswith(("##vso[task.logissue type=", "##vso[task.uploadsummary]"))
               for line in commands), commands
    assert not any(line.startswith("::") for line in lines)
    issues = [c for c in commands if c.startswith("##vso[task.logissue type=error;code=")]
    assert 0 < len(issues) <= ci.DEFAULT_ANNOTATIONS
    assert any("vm-evil%0A" in c for c in commands), "the hostile name is escaped, not dropped"
    (upload,) = [c for c in commands if c.startswith("##vso[task.uploadsummary]")]
    path = Path(upload.removeprefix("##vso[task.uploadsummary]"))
    assert path.is_absolute() and path == (tmp_path / "out" / "summary.md").resolve()


def test_none_and_no_runner_emit_nothing(tmp_path: Path) -> None:
    for env, args in (({"GITHUB_ACTIONS": "true"}, ("--ci", "none")), ({}, ())):
        done = scan(tmp_path, env, *args)
        assert not any(line.startswith("::") or "##vso[" in line for line in done.stdout.splitlines())


def test_an_annotation_names_the_subscription_by_its_display_name_when_known(tmp_path: Path) -> None:
    from backup_preflight.results import ScanResult
    from scan_helpers import run

    from arg import SUB

    result: ScanResult = run(write_snapshot(tmp_path / "s.json", estate()))
    failing = next(f for f in result.findings if f.status == "fail")
    head = f"{failing.policy_id} ({failing.severity}) {failing.resource_name} ({failing.resource_group}, "
    assert head + f"{SUB})" in {title for _, _, title, _ in ci.annotations(result, 100)}
    result.subscriptions = {SUB.lower(): {"displayName": "Contoso: Prod, EU"}}
    named = {title for _, _, title, _ in ci.annotations(result, 100)}
    assert head + "Contoso: Prod, EU)" in named and SUB not in " ".join(named)
    assert ci.github_property(head + "Contoso: Prod, EU)").count("%3A") == 1  # its colon cannot end the property


@pytest.mark.parametrize(("env", "marker"), [({"GITHUB_ACTIONS": "true"}, "::error title="),
                                             ({"TF_BUILD": "True"}, "##vso[task.logissue type=error")])
def test_annotations_show_controls_as_escapes_and_redact_secrets(tmp_path: Path, env: dict[str, str],
                                                                 marker: str) -> None:
    """Annotations are made safe as every report is: an ANSI escape, a bidi override or a SAS signature in a VM
    name (or an Azure message) reaches the CI log shown, not acted on, and masked."""
    doc = estate(extra=["vm-esc\x1b[31m\u202eexe.txt sig=SECRETSIG123 \u00a0::warning::x"])
    done = subprocess.run([str(SCRIPT), "scan", "--snapshot", str(write_snapshot(tmp_path / "s.json", doc)),
                           "--output-dir", str(tmp_path / "out")], capture_output=True, text=True, timeout=300,
                          env={**{k: v for k, v in os.environ.items() if k not in ("GITHUB_ACTIONS", "TF_BUILD")},
                               **env})
    (line,) = [c for c in done.stdout.splitlines() if c.startswith(marker) and "vm-esc" in c]
    assert "\x1b" not in done.stdout and "\u202e" not in done.stdout and "SECRETSIG123" not in done.stdout
    assert "vm-esc\\x1b[31m\\u202eexe.txt sig=***" in line
