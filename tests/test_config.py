"""The configuration file: found in the working directory or given by --config, flags win, paths are
relative to the file, every mistake is exit 2 naming the file and the key, the effective settings
are recorded in results.json."""

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from backup_preflight import config
from backup_preflight.cli import build_parser
from backup_preflight.collect.auth import AUTH_METHODS
from backup_preflight.findings import SEVERITIES

from cli_helpers import run

TEAM: dict[str, Any] = {
    "id": "TEAM-POWER-001", "title": "VM is running", "cause": "guest-shutdown", "severity": "low",
    "assert": {"field": "powerState", "equals": "running"},
    "message": "VM {name} is {powerState}", "remediation": "Start it.",
}


def project(tmp: Path, text: str, name: str = "backup-preflight.toml") -> Path:
    """A repository folder holding a config file and a team policy folder."""
    root = tmp / "repo"
    (root / "team").mkdir(parents=True)
    (root / "team" / "power.json").write_text(json.dumps(TEAM))
    (root / name).write_text(text)
    return root


def results(path: Path) -> dict[str, Any]:
    return json.loads((path / "results.json").read_text())


def test_config_in_the_working_directory_is_applied_and_recorded(tmp_path: Path) -> None:
    root = project(tmp_path, 'fail-on = "never"\noutput-dir = "out"\nadd-policies = ["team"]\n'
                             'strict = true\n[param]\nmaximumPerSlot = 3\n')
    proc = run("scan", "--demo", cwd=root)
    assert proc.returncode == 0, proc.stderr  # fail-on never, from the file
    doc = results(root / "out")
    assert "TEAM-POWER-001" in {p["id"] for p in doc["policies"]}
    assert doc["gate"]["failOn"] == "never" and doc["gate"]["strict"] is True
    assert doc["scan"]["parameters"]["VMBK-SCHED-001"]["maximumPerSlot"] == 3
    recorded = doc["scan"]["configuration"]
    assert recorded["file"] == "backup-preflight.toml"
    assert recorded["sha256"] == hashlib.sha256((root / "backup-preflight.toml").read_bytes()).hexdigest()
    assert recorded["fromFile"] == ["add-policies", "fail-on", "output-dir", "param", "strict"]
    settings = recorded["settings"]
    assert settings["fail-on"] == "never" and "output-dir" not in settings  # where, not what
    assert settings["add-policies"] == ["team"] and settings["param"] == {"maximumPerSlot": 3}
    assert settings["subscription"] == [] and settings["policies"] is None


def test_flags_override_the_file(tmp_path: Path) -> None:
    root = project(tmp_path, 'fail-on = "never"\noutput-dir = "out"\n[param]\nmaximumPerSlot = 3\n')
    proc = run("scan", "--demo", "--fail-on", "high", "--param", "maximumPerSlot=5",
               "--output-dir", tmp_path / "elsewhere", cwd=root)
    assert proc.returncode == 1, proc.stderr
    assert not (root / "out").exists()
    doc = results(tmp_path / "elsewhere")
    assert doc["gate"]["failOn"] == "high"
    assert doc["scan"]["parameters"]["VMBK-SCHED-001"]["maximumPerSlot"] == 5
    assert doc["scan"]["configuration"]["fromFile"] == ["param"]  # overridden per name by --param
    assert doc["scan"]["configuration"]["settings"]["param"] == {"maximumPerSlot": "5"}


def test_paths_are_relative_to_the_config_file_given_with_config(tmp_path: Path) -> None:
    root = project(tmp_path, 'fail-on = "never"\noutput-dir = "out"\npolicies = "team"\n', name="ci.toml")
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    for where in (["--config", root / "ci.toml", "scan"], ["scan", "--config", root / "ci.toml"]):
        proc = run(*where, "--demo", cwd=elsewhere)
        assert proc.returncode == 0, proc.stderr
        assert [p["id"] for p in results(root / "out")["policies"]] == ["TEAM-POWER-001"]
        assert not (elsewhere / "out").exists()


def test_pyproject_table_is_found_and_other_pyprojects_are_ignored(tmp_path: Path) -> None:
    root = project(tmp_path, '[project]\nname = "infra"\n[tool.backup-preflight]\nfail-on = "never"\n'
                             'output-dir = "out"\n', name="pyproject.toml")
    assert run("scan", "--demo", cwd=root).returncode == 0
    assert results(root / "out")["scan"]["configuration"]["file"] == "pyproject.toml"
    (root / "pyproject.toml").write_text('[project]\nname = "infra"\n[tool.ruff]\nline-length = 100\n')
    proc = run("scan", "--demo", "--output-dir", "out2", cwd=root)
    assert proc.returncode == 1, proc.stderr  # no table: the defaults, no error
    assert results(root / "out2")["scan"]["configuration"]["file"] is None


@pytest.mark.parametrize("text", ["tool = 5\n", 'tool = "backup-preflight"\n'])
def test_a_pyproject_whose_tool_is_no_table_has_no_configuration(tmp_path: Path, text: str) -> None:
    """Valid TOML, if no valid pyproject: found in the working directory it was exit 4 (TypeError, AttributeError)."""
    root = project(tmp_path, text, name="pyproject.toml")
    proc = run("scan", "--demo", "--output-dir", "out", cwd=root)
    assert proc.returncode == 1, proc.stderr  # the defaults, as for a pyproject without our table
    proc = run("--config", "pyproject.toml", "scan", "--demo", "--output-dir", "out", cwd=root)
    assert proc.returncode == 2, proc.stderr
    assert "pyproject.toml: /tool: no [tool.backup-preflight] table" in proc.stderr


def test_own_file_wins_over_pyproject(tmp_path: Path) -> None:
    root = project(tmp_path, 'fail-on = "never"\noutput-dir = "own"\n')
    (root / "pyproject.toml").write_text('[tool.backup-preflight]\noutput-dir = "py"\n')
    assert run("scan", "--demo", cwd=root).returncode == 0
    assert (root / "own" / "results.json").is_file() and not (root / "py").exists()


@pytest.mark.parametrize(("text", "name", "expected"), [
    ('fial-on = "never"\n', "backup-preflight.toml",
     "backup-preflight.toml: /: unknown key ('fial-on' was unexpected)"),
    ('fail-on = "urgent"\n', "backup-preflight.toml", 'backup-preflight.toml: /fail-on: "urgent" is not one of'),
    ("strict = 1\n", "backup-preflight.toml", "backup-preflight.toml: /strict: 1 is not of type 'boolean'"),
    ("subscription = [1]\n", "backup-preflight.toml", "backup-preflight.toml: /subscription: [1] is not valid"),
    # an empty list meant the bundled catalog while results.json recorded `policies: []`
    ("policies = []\n", "backup-preflight.toml", "backup-preflight.toml: /policies: [] is not valid"),
    ("[param]\nx = {a = 1}\n", "backup-preflight.toml", "backup-preflight.toml: /param/x: {'a': 1} is not of type"),
    ('fail-on = "never\n', "backup-preflight.toml", "backup-preflight.toml: not valid TOML: "),
    ('[tool.backup-preflight]\nstrict = "yes"\n', "pyproject.toml",
     "pyproject.toml: /tool/backup-preflight/strict: 'yes' is not of type 'boolean'"),
    ('[tool.backup-preflight]\noutput = "x"\n', "pyproject.toml",
     "pyproject.toml: /tool/backup-preflight: unknown key ('output' was unexpected)"),
])
def test_bad_config_is_exit_2_naming_file_and_key(tmp_path: Path, text: str, name: str, expected: str) -> None:
    root = project(tmp_path, text, name=name)
    proc = run("scan", "--demo", "--output-dir", "out", cwd=root)
    assert proc.returncode == 2
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith(f"backup-preflight: error: {expected}"), line
    assert "Traceback" not in proc.stderr and not (root / "out").exists()


def test_bad_parameter_value_in_the_file_names_the_file_and_key(tmp_path: Path) -> None:
    root = project(tmp_path, '[param]\nmaximumPerSlot = "many"\n')
    proc = run("scan", "--demo", "--output-dir", "out", cwd=root)
    assert proc.returncode == 2
    assert "backup-preflight.toml: /param/maximumPerSlot: parameter 'maximumPerSlot' (integer)" in proc.stderr


def test_missing_config_file_is_exit_2(tmp_path: Path) -> None:
    proc = run("--config", tmp_path / "nope.toml", "policies", cwd=tmp_path)
    assert proc.returncode == 2 and "nope.toml: cannot read the configuration file" in proc.stderr


def test_a_source_on_the_command_line_replaces_the_files_scope(tmp_path: Path) -> None:
    root = project(tmp_path, 'subscription = "00000000-0000-0000-0000-000000000001"\noutput-dir = "out"\n')
    proc = run("scan", "--demo", cwd=root)
    assert proc.returncode == 1, proc.stderr  # not "exactly one source"
    settings = results(root / "out")["scan"]["configuration"]["settings"]
    assert settings["subscription"] == []


@pytest.mark.parametrize(("text", "args", "expected"), [
    ("fail-on-new = true\n", ("--demo",), "fail-on-new (set in backup-preflight.toml) needs --baseline"),
    ('baseline = "previous.json"\n', ("--snapshot", "s.json", "--what-if", "w.json"),
     "it cannot be combined with baseline (set in backup-preflight.toml)"),
])
def test_usage_errors_name_the_file_that_set_a_setting(tmp_path: Path, text: str, args: tuple[str, ...],
                                                         expected: str) -> None:
    """They named --fail-on-new or --baseline, which the command line did not hold."""
    root = project(tmp_path, text)
    proc = run("scan", *args, "--output-dir", "out", cwd=root)
    assert proc.returncode == 2 and expected in proc.stderr, proc.stderr


def test_commands_without_settings_ignore_the_file(tmp_path: Path) -> None:
    root = project(tmp_path, "not toml at all [\n")
    assert run("demo-estate", "--vms", "2", "--output", "e.json", cwd=root).returncode == 0
    assert run("completion", "bash", cwd=root).returncode == 0
    assert run("policies", cwd=root).returncode == 2


def test_given_on_command_line_sees_only_what_was_typed() -> None:
    given = config.given_on_command_line(build_parser(), ["-q", "scan", "--demo", "--fail-on", "high"])
    assert {"quiet", "demo", "fail_on", "command"} <= given
    assert not given & {"output_dir", "strict", "policies", "subscription", "verbose"}


def test_schema_enums_match_the_flags() -> None:
    props = config.schema()["properties"]
    assert props["auth"]["enum"] == list(AUTH_METHODS)
    assert props["fail-on"]["enum"] == [*SEVERITIES, "never"]
    flags = {opt.lstrip("-") for action in build_parser()._subparsers._group_actions[0].choices["scan"]._actions
             for opt in action.option_strings if opt.startswith("--")}
    assert set(props) <= flags | {"param"}  # every key is a flag of `scan` (param is --param)
