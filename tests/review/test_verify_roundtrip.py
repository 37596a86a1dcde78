"""`verify` re-applies what results.json recorded: parameters, exemptions and what-if files, by SHA-256."""

from __future__ import annotations

import json
from pathlib import Path

from whatif.plan import az_output, estate_doc, new_vm, write

from cli_helpers import run


def test_recorded_parameters_are_reapplied(tmp_path: Path) -> None:
    snap = write(tmp_path / "s.json", estate_doc())
    out = tmp_path / "out"
    run("scan", "--snapshot", snap, "--output-dir", out, "--param", "maximumPerSlot=3")
    results = out / "results.json"
    assert json.loads(results.read_text())["scan"]["parameters"]["VMBK-SCHED-001"]["maximumPerSlot"] == 3
    ok = run("verify", "--snapshot", snap, "--results", results)
    assert ok.returncode == 0 and "VERIFIED" in ok.stdout, ok.stdout + ok.stderr
    explicit = run("verify", "--snapshot", snap, "--results", results, "--parameters", results)
    assert explicit.returncode == 0, explicit.stdout + explicit.stderr
    other = run("verify", "--snapshot", snap, "--results", results, "--param", "maximumPerSlot=4")
    assert other.returncode == 1 and "maximumPerSlot" in other.stdout


def test_what_if_results_verify_with_the_same_files_only(tmp_path: Path) -> None:
    snap = write(tmp_path / "s.json", estate_doc())
    plan = write(tmp_path / "whatif.json", az_output(*new_vm("vm-new", provision=False)))
    out = tmp_path / "out"
    assert run("scan", "--snapshot", snap, "--what-if", plan, "--output-dir", out).returncode == 1
    results = out / "results.json"
    ok = run("verify", "--snapshot", snap, "--results", results, "--what-if", plan)
    assert ok.returncode == 0 and "VERIFIED" in ok.stdout, ok.stdout + ok.stderr

    missing = run("verify", "--snapshot", snap, "--results", results)
    assert missing.returncode == 2 and "/scan/whatIf/files" in missing.stderr and "--what-if" in missing.stderr
    changed = write(tmp_path / "whatif2.json", az_output(*new_vm("vm-other", provision=False)))
    refused = run("verify", "--snapshot", snap, "--results", results, "--what-if", changed)
    assert refused.returncode == 2 and "not the files the results were produced with" in refused.stderr
    assert "Traceback" not in refused.stderr and refused.stderr.count("\n") == 1
