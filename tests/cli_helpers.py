"""Run the installed console script, as a user would."""

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(sys.executable).with_name("backup-preflight")


def run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=300)
