"""A what-if gate on a generated estate: `scan --what-if` in a fresh process, its time and memory.

    python benchmarks/whatif_bench.py --snapshot /tmp/bp-bench-100000.json [--rounds 2] [-- SCAN ARGS...]

The plan is written beside the estate (FILE.whatif.json): an outbound rule denying Storage 443 added to the
estate's first NSG, and its first VM deleted, so that the gate has new findings to explain and fixed ones to
list. Each round runs `python -m backup_preflight scan --snapshot FILE --what-if PLAN` under `tree_memory.py` (the scan
and the child processes that judge parts and write reports, summed), with any extra arguments given after
`--`; with `PYTHONPATH=OTHER/src` in the environment it runs another checkout's code, for a same-run pair.
Figures go into docs/performance.md by hand, with the command, the code and the machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from tree_memory import measure_both

NSG = "microsoft.network/networksecuritygroups"
VM = "microsoft.compute/virtualmachines"


def first_ids(path: Path) -> tuple[str, str]:
    """The first NSG's and the first VM's ids, read a row per line (as `big_estate.py` writes the file)."""
    found: dict[str, str] = {}
    with path.open("rb") as lines:
        for line in lines:
            try:  # a row inside a table is one line ending with a comma; other lines are skipped
                row = json.loads(line.rstrip().rstrip(b","))
            except json.JSONDecodeError:
                continue
            if not isinstance(row, dict) or not isinstance(row.get("type"), str):
                continue
            found.setdefault(row["type"].lower(), row["id"])
            if NSG in found and VM in found:
                return found[NSG], found[VM]
    raise SystemExit(f"{path}: no NSG and VM rows read a row per line; write it with benchmarks/big_estate.py")


def plan(nsg_id: str, vm_id: str) -> dict:
    """`az deployment group what-if --no-pretty-print` output for the two changes."""
    rule_id = f"{nsg_id}/securityRules/DenyStorage443"
    rule = {"id": rule_id, "name": "DenyStorage443", "type": "Microsoft.Network/networkSecurityGroups/securityRules",
            "apiVersion": "2023-09-01",
            "properties": {"protocol": "Tcp", "sourcePortRange": "*", "destinationPortRange": "443",
                           "sourceAddressPrefix": "*", "destinationAddressPrefix": "Storage", "access": "Deny",
                           "priority": 50, "direction": "Outbound"}}
    changes = [{"resourceId": rule_id, "changeType": "Create", "before": None, "after": rule},
               {"resourceId": vm_id, "changeType": "Delete", "before": None, "after": None}]
    return {"status": "Succeeded", "changes": changes, "error": None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snapshot", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("scan_args", nargs="*", help="more `scan` arguments, after --")
    args = parser.parse_args()
    plan_file = args.snapshot.with_name(args.snapshot.name + ".whatif.json")
    plan_file.write_text(json.dumps(plan(*first_ids(args.snapshot))))
    for round_ in range(1, args.rounds + 1):
        with tempfile.TemporaryDirectory() as out:
            got = measure_both([sys.executable, "-m", "backup_preflight", "--quiet", "scan", "--snapshot",
                                str(args.snapshot), "--what-if", str(plan_file), "--output-dir", out,
                                *args.scan_args])
        print(f"round {round_}: exit {got['exit']}, {float(got['seconds']):.1f} s, "
              f"peak {float(got['peak']):.2f} GB", flush=True)


if __name__ == "__main__":
    main()
