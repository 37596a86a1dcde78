"""One snapshot file of an estate larger than any machine here could generate at once.

    python benchmarks/big_estate.py --blocks 10 --vms 100000 --output /tmp/bp-1m.json    # 1,000,000 VMs

Each block is its own demo estate (`demo-estate --seed 1, 2, …`: disjoint subscriptions and VMs, one
collection time), generated in a fresh interpreter and saved one row per line; its rows are appended
table by table to text files, which are then joined into one file in the same layout (row_lines.py),
so no process holds more than one block. Scan the result with `scan_bench.py --snapshot FILE --full-only`.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import BinaryIO

import msgspec

from backup_preflight import row_lines

COLLECTED_AT = "2026-11-24T06:00:00Z"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=10)
    parser.add_argument("--vms", type=int, default=100000, help="VMs per block")
    parser.add_argument("--output", type=Path, required=True, help="the snapshot file to write (.json)")
    args = parser.parse_args()
    script = Path(sys.executable).with_name("backup-preflight")
    with tempfile.TemporaryDirectory(prefix="bp-big-", dir=args.output.parent) as tmp:
        folder = Path(tmp)
        header: dict | None = None
        subscriptions: list[str] = []
        tables: dict[str, BinaryIO] = {}  # name -> its rows' text so far, one a line
        for i in range(args.blocks):
            block = folder / "block.json"
            subprocess.run([str(script), "demo-estate", "--vms", str(args.vms), "--seed", str(i + 1),
                            "--collected-at", COLLECTED_AT, "--output", str(block)], check=True)
            with block.open("rb") as handle:
                head, items = row_lines.read(line.rstrip(b"\n") for line in handle)
                header = header or head
                subscriptions += head["scope"]["subscriptions"]
                for item in items:
                    if isinstance(item, str):
                        out = tables.get(item) or tables.setdefault(item, (folder / f"table-{len(tables)}").open("w+b"))
                    else:
                        out.write(item[0] + b"\n")
            block.unlink()
            print(f"block {i + 1}/{args.blocks} done", flush=True)
        assert header is not None
        header["scope"] = {**header["scope"], "subscriptions": subscriptions}
        for text in tables.values():
            text.seek(0)
        with args.output.open("wb") as final:
            final.writelines(row_lines.encode(header, {name: (msgspec.Raw(line[:-1]) for line in text)
                                                       for name, text in tables.items()}))
    print(f"{args.output}: {args.blocks * args.vms:,} VMs, {args.output.stat().st_size / 1e9:.2f} GB")


if __name__ == "__main__":
    main()
