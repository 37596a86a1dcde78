"""Untrusted text is inert everywhere it is written, and secrets from any snapshot are redacted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backup_preflight.text import inert, redact, safe

from arg import instance_view, snapshot_doc, vm_row
from cli_helpers import run

JWT = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJzcG4tcHJlZmxpZ2h0In0.c2lnbmF0dXJlLWJ5dGVz"
SAS_SIG = "Xq9%2Bsecret%3D"
ACCOUNT_KEY = "c2VjcmV0LWFjY291bnQta2V5"
SECRETS = (JWT, SAS_SIG, ACCOUNT_KEY)
HOSTILE = ("\x1b[31mvm-evil\x1b[0m\n::error::pwned ##vso[task.setvariable variable=ok]true \u202egnp.exe"
           "\n\u00a0::warning::nbsp ##[error]legacy")


@pytest.mark.parametrize(("raw", "shown"), [
    ("\x1b[2Jcleared", "\\x1b[2Jcleared"),
    ("line\nnext", "line next"),
    ("::error file=a::boom", "\\::error file=a::boom"),
    ("  ::warning::x", "  \\::warning::x"),
    ("##[error]x", "#\\#[error]x"),
    # GitHub's runner still runs the older `##[command]` anywhere in a line (ActionCommand.TryParse) and takes
    # `::` after any whitespace .NET's TrimStart removes (no-break, em and ideographic spaces).
    ("Throttled ##[error title=Injected]forged", "Throttled #\\#[error title=Injected]forged"),
    ("\u00a0::error title=I::forged", "\u00a0\\::error title=I::forged"),
    ("\u3000::warning::x", "\u3000\\::warning::x"),
    ("\u2003\u202f::add-mask::x", "\u2003\u202f\\::add-mask::x"),
    ("ok ##VSO[task.complete result=Succeeded]", "ok #\\#VSO[task.complete result=Succeeded]"),
    ("a\u202eb\u2066c\u2069", "a\\u202eb\\u2066c\\u2069"),
    ("cr\roverwrite", "cr\\x0doverwrite"),
    ("bell\x07 nel\x85", "bell\\x07 nel\\x85"),
    ("plain vm-01 (rg: RG-App)", "plain vm-01 (rg: RG-App)"),
])
def test_inert_shows_what_would_act_as_visible_escapes(raw: str, shown: str) -> None:
    assert inert(raw) == shown


def test_inert_keeps_newlines_when_asked_but_still_guards_each_line() -> None:
    assert inert("a\n::error::b", keep_newlines=True) == "a\n\\::error::b"
    assert inert("a\n\u3000::error::b", keep_newlines=True) == "a\n\u3000\\::error::b"


@pytest.mark.parametrize("text", [
    f"Authorization: Bearer {JWT}",
    f"token {JWT} expired",
    f"https://acct.blob.core.windows.net/c/b?sv=2022-11-02&sr=b&sig={SAS_SIG}&se=2026-12-01",
    f"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={ACCOUNT_KEY};EndpointSuffix=core.windows.net",
    f"Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=root;SharedAccessKey={ACCOUNT_KEY}",
])
def test_redact_masks_every_kind_of_secret(text: str) -> None:
    masked = redact(text)
    assert not any(secret in masked for secret in SECRETS) and "***" in masked
    assert safe(text) == inert(masked)


def test_redact_leaves_ordinary_text_alone() -> None:
    for text in ("signature verified", "sig is fine", "AccountName=acct;EndpointSuffix=core.windows.net",
                 "vm-01 agent 2.7.41491.1010"):
        assert redact(text) == text


@pytest.fixture(scope="module")
def hostile_scan(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """An offline snapshot with a hostile VM name and secrets in its errors, scanned by the CLI."""
    tmp = tmp_path_factory.mktemp("hostile")
    vm = vm_row("vm-evil", provision=False)
    vm["name"] = HOSTILE
    doc = snapshot_doc([vm, vm_row("vm-ok")], instanceviews=[instance_view(vm_row("vm-ok")["id"])])
    doc["errors"] = [{"scope": "/subscriptions/00000000-0000-0000-0000-000000000000", "table": "metrics",
                      "status": 403, "message": f"::error::denied for Bearer {JWT} at https://acct.blob.core."
                                                f"windows.net/x?sig={SAS_SIG} AccountKey={ACCOUNT_KEY} "
                                                "##vso[task.complete result=Succeeded] \u202e\n\u3000::error::"
                                                "x ##[add-mask]Contoso"}]
    snap = tmp / "snap.json"
    snap.write_text(json.dumps(doc))
    proc = run("scan", "--snapshot", snap, "--output-dir", tmp / "reports")
    assert proc.returncode == 3, proc.stderr  # a scope error: incomplete
    return proc.stdout + proc.stderr, tmp / "reports"


def _assert_inert(text: str, where: str) -> None:
    assert "\x1b" not in text and "\u202e" not in text, where
    assert "##vso[" not in text.lower(), where
    assert "##[" not in text, where
    assert not any(line.lstrip().startswith("::") for line in text.split("\n")), where


def test_console_and_summary_are_inert(hostile_scan: tuple[str, Path]) -> None:
    console, reports = hostile_scan
    _assert_inert(console, "console")
    assert "]: ::error::denied for Bearer ***" in console  # shown as text, mid-line where no CI acts on it
    summary = (reports / "summary.md").read_text()
    _assert_inert(summary, "summary.md")
    assert "\\x1b\\[31mvm-evil" in summary  # the name is there, escaped (Markdown escapes the [ too)


@pytest.mark.parametrize("report", ["report.html", "junit.xml", "summary.md"])
def test_human_and_ci_reports_are_inert(hostile_scan: tuple[str, Path], report: str) -> None:
    _assert_inert((hostile_scan[1] / report).read_text(), report)


@pytest.mark.parametrize("report", ["report.html", "junit.xml", "summary.md", "results.json", "console"])
def test_secrets_in_a_snapshots_errors_are_redacted_in_every_report(hostile_scan: tuple[str, Path],
                                                                    report: str) -> None:
    console, reports = hostile_scan
    text = console if report == "console" else (reports / report).read_text()
    assert "denied for Bearer" in text  # the error itself is reported...
    for secret in SECRETS:  # ...without its secrets
        assert secret not in text, (report, secret)


def test_a_backup_jobs_text_and_an_exemptions_note_are_safe_in_every_report(tmp_path: Path) -> None:
    """A failed job's error string and recommendations come from Azure (a SAS URL in them is real: extensions
    report the blob they failed on); an exemption's reason comes from a file someone else wrote. Every report
    redacts and neutralises them: report.html's VM panel and results.json's jobDiagnosis once did neither."""
    from job_helpers import job_estate

    doc = job_estate()
    jobs = [r for r in doc["tables"]["recoveryservicesresources"] if r["type"].endswith("/backupjobs")]
    detail = jobs[1]["properties"]["errorDetails"][0]
    detail["errorString"] = f"\x1b[31mfailed\u202e at https://a.blob.core.windows.net/c?sig={SAS_SIG}"
    detail["recommendations"] = [f"retry with AccountKey={ACCOUNT_KEY} \x07"]
    vm_id = next(r["id"] for r in doc["tables"]["resources"] if r["name"] == "vm-stopped")
    exemptions = tmp_path / "exemptions.json"
    exemptions.write_text(json.dumps({"exemptions": [{
        "id": "EX-1", "policies": ["VMBK-POWER-001"], "resources": [vm_id], "category": "waiver", "owner": "ops",
        "expiresOn": "2099-01-01", "justification": f"approved\x1b[2J by Bearer {JWT} \u202e"}]}))
    snap = tmp_path / "snap.json"
    snap.write_text(json.dumps(doc))
    proc = run("scan", "--snapshot", snap, "--output-dir", tmp_path / "reports", "--exemptions", exemptions)
    assert proc.returncode in (0, 1), proc.stderr
    for report in ("report.html", "junit.xml", "summary.md", "results.json", "findings.csv"):
        text = (tmp_path / "reports" / report).read_text(encoding="utf-8")
        if report == "results.json":  # JSON keeps text as it is, Azure's secrets masked; the exemption entries
            assert SAS_SIG not in text and ACCOUNT_KEY not in text  # are recorded as written, beside their hash
        else:
            assert not any(secret in text for secret in SECRETS), report
            _assert_inert(text, report)
    page = (tmp_path / "reports" / "report.html").read_text(encoding="utf-8")
    assert "\\\\x1b[31mfailed\\\\u202e at https://a.blob.core.windows.net/c?sig=***" in page
    assert "approved\\\\x1b[2J by Bearer ***" in page
