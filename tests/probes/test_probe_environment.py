"""The values the runner prepends reach the script unchanged, whatever characters they hold."""

from __future__ import annotations

import subprocess

from hypothesis import given, settings
from hypothesis import strategies as st

from backup_preflight import probes

# Anything a shell variable can hold: no NUL, no lone surrogates (not encodable).
VALUES = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40)


@settings(max_examples=60, deadline=None)
@given(VALUES)
def test_sh_assignment_round_trips_any_value(value: str) -> None:
    lines = probes.environment_lines("linux", {"BP_VM_ID": value})
    # Run Command sends the script as lines; joined with newlines they must give the value back.
    script = "\n".join([*lines, 'printf %s "$BP_VM_ID"', "sh -c 'printf %s \"$BP_VM_ID\"' >&2"])
    done = subprocess.run(["sh", "-c", script], capture_output=True, timeout=20, check=False)
    assert done.returncode == 0
    assert done.stdout.decode() == value  # the script's own shell
    assert done.stderr.decode() == value  # exported to what it runs


def test_powershell_assignment_doubles_single_quotes() -> None:
    # No PowerShell here: the rule itself — inside '…' only ' is special, written as ''.
    assert probes.environment_lines("windows", {"BP_VM_ID": "a'b$c`d\"e"}) == ["$env:BP_VM_ID = 'a''b$c`d\"e'"]
