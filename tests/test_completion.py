"""Shell completion generated from the parser: every subcommand and flag, valid shell syntax."""

import shutil
import subprocess
from pathlib import Path

import pytest

from cli_helpers import run

SUBCOMMANDS = ("scan", "verify", "collect", "policies", "validate", "demo-estate", "completion")


@pytest.mark.parametrize("shell", ["bash", "zsh", "tcsh"])
def test_completion_script_names_every_subcommand_and_flag(shell: str) -> None:
    proc = run("completion", shell)
    assert proc.returncode == 0, proc.stderr
    flags = ("add-policies", "fail-on", "config", "quiet", "verbose")
    for word in (*SUBCOMMANDS, *(flag if shell == "tcsh" else f"--{flag}" for flag in flags)):
        assert word in proc.stdout, word  # tcsh lists the flags without dashes


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_completion_script_is_valid_shell(shell: str, tmp_path: Path) -> None:
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed")
    script = tmp_path / f"completion.{shell}"
    script.write_text(run("completion", shell).stdout)
    check = subprocess.run([shell, "-n", str(script)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


def test_bash_completion_completes_subcommands_and_choices(tmp_path: Path) -> None:
    if shutil.which("bash") is None:
        pytest.skip("bash is not installed")
    script = tmp_path / "completion.bash"
    script.write_text(run("completion", "bash").stdout)

    def complete(line: str) -> list[str]:
        words = line.split(" ")
        probe = (f"source {script}; COMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; "
                 f"COMP_LINE='{line}'; COMP_POINT=${{#COMP_LINE}}; "
                 "_shtab_backup_preflight; printf '%s\\n' \"${COMPREPLY[@]}\"")
        out = subprocess.run(["bash", "-c", probe], capture_output=True, text=True)
        return out.stdout.split()

    assert {"scan", "validate", "demo-estate"} <= set(complete("backup-preflight "))
    assert set(complete("backup-preflight scan --fail-on ")) == {"critical", "high", "medium", "low", "never"}
