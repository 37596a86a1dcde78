"""results.json version 2 against the version 1 form of the same scan: size, write time, read time and memory.

    python benchmarks/results_bench.py --snapshot /tmp/bp-bench-100000.json [--rounds 2]

Scans the snapshot once in-process, then in each round (alternating which goes first) writes
the results as version 2 (the tool's writer) and in the version 1 form (every finding a document,
as scans wrote it until 2026-11-29). Each file is then read back in a fresh interpreter the way
baseline and verify read it (`load_results`, then every finding through `iter_finding_documents`),
peak RSS by `/usr/bin/time`. Figures go into docs/performance.md by hand.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO

import msgspec

from backup_preflight import scan
from backup_preflight.gcpause import gc_paused
from backup_preflight.policy.loader import bundled_policy_dir, load_policies
from backup_preflight.report import results_json
from backup_preflight.results import Gate, ScanResult

READ = """
import gc, sys, time
from pathlib import Path
gc.disable()
start = time.perf_counter()
from backup_preflight.review.baseline import load_results
from backup_preflight.results_reader import iter_finding_documents
doc, _ = load_results(Path(sys.argv[1]))
n = sum(1 for _ in iter_finding_documents(doc))
print(time.perf_counter() - start, n)
"""


def write_v1(result: ScanResult, path: Path) -> None:
    """The version 1 form: the same head and tail, every finding as its full document."""
    with path.open("wb") as out:
        _v1(result, out)


def _v1(result: ScanResult, out: IO[bytes]) -> None:
    encode = msgspec.json.Encoder().encode
    head = msgspec.json.format(encode({"schemaVersion": 1, "scan": result.run,
                                       "policies": results_json.policy_document(result)}), indent=2)
    out.write(head[:-2] + b',\n  "findings": [')
    remediation = {p.id: p.remediation for p in result.policies}
    for i, f in enumerate(result.findings):
        out.write(b"\n    " if i == 0 else b",\n    ")
        out.write(encode(results_json.finding_document(f, remediation[f.policy_id])))
    out.write(b"\n  ],\n  " + encode({"summary": result.summary, "coverage": result.coverage})[1:] + b"\n")


def timed_write(writer: object, result: ScanResult, path: Path) -> float:
    start = time.perf_counter()
    with gc_paused():
        writer(result, path)  # type: ignore[operator]
    return time.perf_counter() - start


def read(path: Path) -> tuple[float, int, float]:
    proc = subprocess.run(["/usr/bin/time", "-f", "%M", sys.executable, "-c", READ, str(path)],
                          capture_output=True, text=True, check=True)
    seconds, count = proc.stdout.split()
    return float(seconds), int(count), int(proc.stderr.strip().splitlines()[-1]) / 1024 / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--snapshot", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    start = time.perf_counter()
    result = scan.run_scan(scan.snapshot_source([args.snapshot]), load_policies([bundled_policy_dir()]), Gate())
    print(f"scan (load + estate + evaluate + review): {time.perf_counter() - start:.1f} s, "
          f"{len(result.findings)} findings")
    folder = Path(tempfile.mkdtemp(prefix="bp-results-bench-"))
    forms = {"version 2": (results_json.write, folder / "v2.json"), "version 1 form": (write_v1, folder / "v1.json")}
    for r in range(args.rounds):
        order = list(forms) if r % 2 == 0 else list(reversed(forms))
        for name in order:
            writer, path = forms[name]
            print(f"round {r + 1}: write {name}: {timed_write(writer, result, path):.1f} s")
    del result
    for name, (_, path) in forms.items():
        seconds, count, peak = read(path)
        print(f"{name}: {path.stat().st_size / 1e6:.1f} MB; read back {count} findings in {seconds:.1f} s, "
              f"peak {peak:.2f} GB")


if __name__ == "__main__":
    main()
