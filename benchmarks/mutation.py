"""Mutation score of the verdict logic (estate/ and policy/, and the carriers of a part's verdicts: packed.py,
workers.py, plain_passes.py, findings.py) under the fast tests; not run in CI.

mutmut (configured in pyproject.toml, `[tool.mutmut]`) changes one operator, constant or call at a
time in those packages and runs the tests that reach the changed function; a mutant the tests do
not notice "survived". We print, per module, how many were killed and the killed share.

    .venv/bin/pip install -e '.[mutation]'
    .venv/bin/python benchmarks/mutation.py                     # both packages, one worker
    .venv/bin/python benchmarks/mutation.py --package policy    # or: estate, or one module glob
    .venv/bin/python benchmarks/mutation.py --report-only       # re-read the last run's results
    .venv/bin/python benchmarks/mutation.py --package estate --sample 25 --seed 1   # 25 random mutants a module

mutmut is CPU heavy: the default is one worker (`--max-children 1`; `--nice 10` to yield more),
and `--timeout` bounds the whole run. Where a full run does not fit (a survivor runs every test that
reaches its function, hypothesis tests included), `--sample N` tests N mutants of each module drawn at
random (`--seed`) from the mutant list of the last run, and the killed share estimates the module's.
Figures go into docs/testing.md by hand, with the date and the command.
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import random
import shutil
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MUTMUT = Path(sys.executable).with_name("mutmut")
#: Each package's mutant-name globs; `carriers` are the modules that carry a part's verdicts out of the child
#: process that judged it (packed.py), run those children (workers.py), hold the verdicts for the rest of the
#: run (plain_passes.py) and filter them (findings.py).
PACKAGES = {"estate": ("backup_preflight.estate.*",), "policy": ("backup_preflight.policy.*",),
            "carriers": ("backup_preflight.packed.*", "backup_preflight.workers.*", "backup_preflight.plain_passes.*",
                         "backup_preflight.findings.*")}
#: Statuses that mean the tests noticed the mutant (a timeout is a mutant that hangs the tests).
CAUGHT = {"killed", "timeout", "caught by type check", "segfault"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--package", default="all",
                        help="estate, policy, carriers, all, or mutant-name globs, comma-separated "
                             "(backup_preflight.policy.operators*)")
    parser.add_argument("--max-children", type=int, default=1, help="parallel test workers (default 1)")
    parser.add_argument("--nice", type=int, default=0, help="lower the run's CPU priority by this much")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds for the whole run (default 3600)")
    parser.add_argument("--report-only", action="store_true", help="print the last run's results, run nothing")
    parser.add_argument("--survivors", action="store_true", help="list every surviving mutant")
    parser.add_argument("--sample", type=int, default=0,
                        help="test only this many random mutants of each module (needs an earlier run's mutant list)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of --sample")
    args = parser.parse_args()
    if not MUTMUT.exists():
        sys.exit("mutmut is not installed: .venv/bin/pip install -e '.[mutation]'")
    names = list(PACKAGES) if args.package == "all" else args.package.split(",")
    patterns = [pattern for name in names for pattern in PACKAGES.get(name, (name,))]
    if args.sample:
        if not (ROOT / "mutants").is_dir():
            sys.exit("--sample draws from the mutants of an earlier run: run once without it (or stop one early)")
        patterns = sample(_results(), patterns, args.sample, args.seed)
    if not args.report_only:
        shutil.rmtree(ROOT / "mutants", ignore_errors=True)  # mutate the current source, not a stale copy
        command = ["nice", "-n", str(args.nice), str(MUTMUT), "run",
                   "--max-children", str(args.max_children), *patterns]
        print("$", " ".join(command), flush=True)
        try:
            subprocess.run(command, cwd=ROOT, check=True, timeout=args.timeout,
                           stdout=subprocess.DEVNULL, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
        except subprocess.TimeoutExpired:
            print(f"stopped after {args.timeout} s: the figures below count only the mutants tested so far")
    report(_results(), args.survivors)
    return 0


def sample(results: dict[str, str], patterns: list[str], per_module: int, seed: int) -> list[str]:
    """`per_module` mutant names of each module matching `patterns`, drawn at random (sorted first, so a seed
    always draws the same names from the same source)."""
    by_module: defaultdict[str, list[str]] = defaultdict(list)
    for name in sorted(results):
        if any(fnmatch.fnmatch(name, p) for p in patterns):
            by_module[name.rsplit(".", 1)[0]].append(name)
    rng = random.Random(seed)
    return [name for module in sorted(by_module)
            for name in rng.sample(by_module[module], min(per_module, len(by_module[module])))]


def _results() -> dict[str, str]:
    """Mutant name -> status, from `mutmut results --all true` (lines `name: status`)."""
    out = subprocess.run([str(MUTMUT), "results", "--all", "true"], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    pairs = (line.strip().rpartition(": ") for line in out.splitlines() if ": " in line)
    return {name: status for name, _, status in pairs}


def report(results: dict[str, str], survivors: bool) -> None:
    by_module: defaultdict[str, Counter[str]] = defaultdict(Counter)
    totals: dict[str, Counter[str]] = defaultdict(Counter)
    for name, status in results.items():
        by_module[name.rsplit(".", 1)[0]][status] += 1
        for package, globs in PACKAGES.items():
            if any(fnmatch.fnmatch(name, glob) for glob in globs):
                totals[package][status] += 1
    print(f"{'module':42} {'mutants':>7} {'killed':>7} {'survived':>8} {'no tests':>8} {'untested':>8} {'killed %':>8}")
    for module, counts in sorted(by_module.items()):
        _line(module, counts)
    for package, counts in totals.items():
        _line(f"{package} (all modules)", counts)
    if survivors:
        for name, status in sorted(results.items()):
            if status == "survived":
                print(f"survived: {name}")


def _line(label: str, counts: Counter[str]) -> None:
    total = sum(counts.values())
    killed = sum(n for status, n in counts.items() if status in CAUGHT)
    tested = total - counts["not checked"]
    share = f"{100 * killed / tested:.1f}" if tested else "-"
    print(f"{label:42} {total:7} {killed:7} {counts['survived']:8} {counts['no tests']:8} "
          f"{counts['not checked']:8} {share:>8}")


if __name__ == "__main__":
    raise SystemExit(main())
