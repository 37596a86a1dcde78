"""Our scan against a peer: the same backup checks as DuckDB SQL over the snapshot's tables as NDJSON.

    pip install -c constraints.txt -e '.[bench]'
    backup-preflight demo-estate --vms 100000 --output /tmp/bp-peer-100000.json
    python benchmarks/duckdb_peer.py --snapshot /tmp/bp-peer-100000.json --rounds 3

The snapshot's tables are written once as NDJSON next to it (untimed, as a warehouse would hold
them). Then, in the same invocation and alternating which goes first, each round runs in fresh
processes: the peer (DuckDB loads the tables, then runs the checks; both timed, peak RSS of its
process), `backup-preflight scan` with its defaults (`--jobs auto`) and outputs, the same scan with
`--jobs N` (default 1), our load + estate + evaluate phase holding the estate whole, and the same
judged in parts as the scan's defaults judge them, for a snapshot saved one row per line (all from
scan_bench.py: wall time, and memory as the larger of the peak RSS of the largest process and the peak
of the summed PSS of the process and its children, tree_memory.py; the last needs a row-per-line file,
as `demo-estate` writes). The result is the ratio to the peer, per round and as
the median.

The peer's checks are the decisive core of ours, not their edge cases: power state, agent version
compared as dotted integers, a failed backup extension (instance view or ARM row), the first
matching outbound NSG rule for Storage TCP 443 (NIC, then subnet; custom and default rules; service
tags, `*`/`Internet`/`AzureCloud`, and a `/1` pair as everything — other CIDRs and source fields are
not judged, where we report `unknown`), a subnet route table whose 0.0.0.0/0 route goes nowhere,
more than 10 protected VMs of one placement group (subscription/resource group/availability set)
in one UTC slot of the week (the backup policy's first run time in its Windows time zone on each of the
seven days from the collection day, a weekly policy's days only; an hourly policy's every start in its
window), and VMs without a protected item whose
scheduled backups run (Protected, IRPending, ProtectionError and the like). The Windows
to IANA zone table comes from tzlocal, as data.
"""

from __future__ import annotations

import argparse
import functools
import gzip
import statistics
import subprocess
import sys
from pathlib import Path

import msgspec
from scan_bench import PHASES, full_scan, measure

TABLES = {
    "resources": "id: 'VARCHAR', name: 'VARCHAR', type: 'VARCHAR', location: 'VARCHAR', "
                 "resourceGroup: 'VARCHAR', subscriptionId: 'VARCHAR', properties: 'JSON'",
    "recoveryservicesresources": "id: 'VARCHAR', type: 'VARCHAR', properties: 'JSON'",
    "instanceviews": "id: 'VARCHAR', instanceView: 'JSON'",
}

CHECKS_SQL = """
CREATE TEMP TABLE vm AS
SELECT lower(r.id) AS vid, r.location AS loc, r.subscriptionId AS sub, lower(r.resourceGroup) AS rg,
       lower(r.properties->>'$.storageProfile.osDisk.osType') AS os,
       lower(coalesce(r.properties->>'$.availabilitySet.id', '')) AS avset,
       lower(replace(coalesce(
           list_filter(json_extract_string(iv.instanceView, '$.statuses[*].code'),
                       lambda c: c ILIKE 'PowerState/%')[1],
           r.properties->>'$.extended.instanceView.powerState.code'), 'PowerState/', '')) AS power,
       iv.instanceView->>'$.vmAgent.vmAgentVersion' AS agent,
       iv.instanceView AS view
FROM resources r LEFT JOIN instanceviews iv ON lower(iv.id) = lower(r.id)
WHERE lower(r.type) = 'microsoft.compute/virtualmachines';

CREATE TEMP TABLE rule AS
SELECT lower(nsg_id) AS nsg, priority, lower(access) AS access,
       coalesce(CASE WHEN dst <> '' THEN [dst] END, dsts, []) AS dsts,
       coalesce(CASE WHEN port <> '' THEN [port] END, ports, []) AS ports
FROM (
  SELECT id AS nsg_id,
         TRY_CAST(rl->>'$.properties.priority' AS INTEGER) AS priority,
         rl->>'$.properties.access' AS access,
         rl->>'$.properties.destinationAddressPrefix' AS dst,
         json_extract_string(rl, '$.properties.destinationAddressPrefixes[*]') AS dsts,
         rl->>'$.properties.destinationPortRange' AS port,
         json_extract_string(rl, '$.properties.destinationPortRanges[*]') AS ports,
         lower(rl->>'$.properties.direction') AS direction,
         lower(coalesce(rl->>'$.properties.protocol', '*')) AS protocol
  FROM (SELECT id, unnest(coalesce(CAST(properties->'$.securityRules' AS JSON[]), [])
                          || coalesce(CAST(properties->'$.defaultSecurityRules' AS JSON[]), [])) AS rl
        FROM resources WHERE lower(type) = 'microsoft.network/networksecuritygroups'))
WHERE direction = 'outbound' AND protocol IN ('*', 'tcp');

CREATE TEMP TABLE nic AS
SELECT lower(properties->>'$.virtualMachine.id') AS vid,
       lower(properties->>'$.networkSecurityGroup.id') AS nsg,
       lower(properties->>'$.ipConfigurations[0].properties.subnet.id') AS subnet
FROM resources
WHERE lower(type) = 'microsoft.network/networkinterfaces'
  AND coalesce(TRY_CAST(properties->>'$.primary' AS BOOLEAN), true);

CREATE TEMP TABLE subnet AS
SELECT lower(s->>'$.id') AS subnet, lower(s->>'$.properties.networkSecurityGroup.id') AS nsg,
       lower(s->>'$.properties.routeTable.id') AS rt
FROM (SELECT unnest(CAST(properties->'$.subnets' AS JSON[])) AS s
      FROM resources WHERE lower(type) = 'microsoft.network/virtualnetworks');

-- The first outbound rule of an NSG that matches Storage on TCP 443, for each region's VMs.
CREATE TEMP TABLE first_match AS
SELECT nsg, loc, arg_min(access, priority) AS access
FROM rule, (SELECT DISTINCT lower(loc) AS loc FROM vm)
WHERE list_bool_or(list_transform(ports, lambda p: p = '*' OR p = '443' OR (p LIKE '%-%'
          AND TRY_CAST(split_part(p, '-', 1) AS INTEGER) <= 443
          AND TRY_CAST(split_part(p, '-', 2) AS INTEGER) >= 443)))
  AND (list_bool_or(list_transform(dsts, lambda d: lower(d) IN ('*', 'any', '0.0.0.0/0', 'internet', 'azurecloud',
          'storage', 'azurecloud.' || loc, 'storage.' || loc)))
       OR (list_contains(dsts, '0.0.0.0/1') AND list_contains(dsts, '128.0.0.0/1')))
GROUP BY nsg, loc;

-- A backup policy's run times as UTC instants of the week (its time zone is a Windows name), taken on the
-- seven dates from the collection day: every day, or a weekly policy's days; an hourly policy starts one
-- every `interval` hours within its window.
CREATE TEMP TABLE policy_slot AS
WITH policy AS (
  SELECT lower(id) AS policy, properties->>'$.timeZone' AS zone,
         TRY_CAST(properties->>'$.schedulePolicy.hourlySchedule.interval' AS INTEGER) AS every,
         TRY_CAST(properties->>'$.schedulePolicy.hourlySchedule.scheduleWindowDuration' AS INTEGER) AS hours,
         coalesce(properties->>'$.schedulePolicy.scheduleRunTimes[0]',
                  properties->>'$.schedulePolicy.dailySchedule.scheduleRunTimes[0]',
                  properties->>'$.schedulePolicy.weeklySchedule.scheduleRunTimes[0]',
                  properties->>'$.schedulePolicy.hourlySchedule.scheduleWindowStartTime') AS run_time,
         lower(properties->>'$.schedulePolicy.scheduleRunFrequency') = 'weekly' AS weekly,
         CAST(coalesce(properties->'$.schedulePolicy.weeklySchedule.scheduleRunDays',
                       properties->'$.schedulePolicy.scheduleRunDays') AS VARCHAR[]) AS days
  FROM recoveryservicesresources WHERE lower(type) = 'microsoft.recoveryservices/vaults/backuppolicies'),
dated AS (
  SELECT policy.*, CAST(substr(getvariable('collected'), 1, 10) AS DATE) + CAST(n AS INTEGER) AS day
  FROM policy, range(0, 7) AS r(n))
SELECT policy, strftime(timezone('UTC', timezone(coalesce(z.iana, 'UTC'),
         CAST(strftime(day, '%Y-%m-%d') || ' ' || substr(run_time, 12, 8) AS TIMESTAMP)
         + to_hours(unnest(CASE WHEN every IS NULL THEN [0] ELSE range(0, hours, every) END)))),
         '%A %H:%M') AS slot
FROM dated LEFT JOIN windows_zone z ON z.windows = zone
WHERE run_time IS NOT NULL AND (NOT coalesce(weekly, false) OR list_contains(days, dayname(day)));

CREATE TEMP TABLE slot AS
SELECT lower(coalesce(properties->>'$.sourceResourceId', properties->>'$.virtualMachineId')) AS vid,
       lower(properties->>'$.protectionState') IN ('protected', 'irpending', 'protectionerror',
           'protectionconfigured', 'configuringprotection', 'updatingprotection', 'retentionschedulessuspended')
         AS active, ps.slot
FROM recoveryservicesresources p LEFT JOIN policy_slot ps ON ps.policy = lower(p.properties->>'$.policyId')
WHERE lower(p.type) = 'microsoft.recoveryservices/vaults/backupfabrics/protectioncontainers/protecteditems';
"""

# One query per check, each returning the number of VMs that fail it.
CHECKS = {
    "power state: stopped in the guest": "SELECT count(*) FROM vm WHERE power = 'stopped'",
    "agent below minimum (dotted ints)": """
SELECT count(*) FROM vm WHERE power = 'running' AND agent IS NOT NULL
  AND list_transform(string_split(agent, '.'), lambda x: TRY_CAST(x AS BIGINT))
      < CASE WHEN os = 'linux' THEN [2, 2, 53, 1] ELSE [2, 7, 41491, 1010] END""",
    "backup extension failed": """
SELECT count(DISTINCT vid) FROM (
  SELECT vid FROM (SELECT vid, unnest(CAST(view->'$.extensions' AS JSON[])) AS e FROM vm WHERE power = 'running')
  WHERE e->>'$.type' ILIKE '%VMSnapshot%'
    AND list_bool_or(list_transform(json_extract_string(e, '$.statuses[*].code'),
                                    lambda c: c ILIKE 'ProvisioningState/failed%'))
  UNION ALL
  SELECT lower(split_part(id, '/extensions/', 1)) FROM resources
  WHERE lower(type) = 'microsoft.compute/virtualmachines/extensions'
    AND properties->>'$.type' ILIKE 'VMSnapshot%' AND properties->>'$.provisioningState' = 'Failed')""",
    "NSG denies Storage 443 (NIC, subnet)": """
SELECT count(*) FROM vm
JOIN nic USING (vid) LEFT JOIN subnet USING (subnet)
LEFT JOIN first_match n ON n.nsg = nic.nsg AND n.loc = lower(vm.loc)
LEFT JOIN first_match s ON s.nsg = subnet.nsg AND s.loc = lower(vm.loc)
WHERE power <> 'deallocated'
  AND (n.access = 'deny' OR (coalesce(n.access, 'allow') = 'allow' AND s.access = 'deny'))""",
    "default route to nowhere": """
SELECT count(*) FROM vm JOIN nic USING (vid) JOIN subnet USING (subnet)
JOIN (SELECT lower(id) AS rt FROM resources WHERE lower(type) = 'microsoft.network/routetables'
        AND list_bool_or(list_transform(CAST(properties->'$.routes' AS JSON[]),
              lambda r: r->>'$.properties.addressPrefix' = '0.0.0.0/0' AND r->>'$.properties.nextHopType' = 'None'))
     ) USING (rt)
WHERE power <> 'deallocated'""",
    "schedule crowding (>10 per slot)": """
SELECT count(DISTINCT vid) FROM vm JOIN slot USING (vid)
JOIN (SELECT sub, rg, avset, slot FROM vm JOIN slot USING (vid) WHERE active
      GROUP BY ALL HAVING count(*) > 10) USING (sub, rg, avset, slot)
WHERE active""",
    "unprotected": "SELECT count(*) FROM vm ANTI JOIN (SELECT vid FROM slot WHERE active) USING (vid)",
}

PEER = """
import json, sys, time
import duckdb
directory, tables, setup, checks = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], json.loads(sys.argv[4])
from tzlocal.windows_tz import win_tz
start = time.perf_counter()
con = duckdb.connect()
con.execute('SET enable_progress_bar = false')
con.execute("SET VARIABLE collected = ?", [open(f"{directory}/collectedAt").read()])
con.execute("CREATE TABLE windows_zone (windows VARCHAR, iana VARCHAR)")
con.executemany("INSERT INTO windows_zone VALUES (?, ?)", list(win_tz.items()))
for table, columns in tables.items():
    con.execute(f"CREATE TABLE {table} AS SELECT * FROM read_json('{directory}/{table}.ndjson', "
                f"format='newline_delimited', columns={{{columns}}}, maximum_object_size=134217728)")
loaded = time.perf_counter()
con.execute(setup)
counts = {name: con.execute(sql).fetchone()[0] for name, sql in checks.items()}
done = time.perf_counter()
print(json.dumps({"load": loaded - start, "query": done - loaded, "counts": counts}))
"""


def write_ndjson(snapshot: Path) -> Path:
    """The tables the peer reads, one JSON row a line, written once beside the snapshot."""
    directory = snapshot.with_name(snapshot.name.split(".")[0] + "-ndjson")
    if all((directory / name).exists() for name in (*(f"{t}.ndjson" for t in TABLES), "collectedAt")):
        return directory
    raw = snapshot.read_bytes()
    document = msgspec.json.decode(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)
    directory.mkdir(exist_ok=True)
    (directory / "collectedAt").write_text(document["collectedAt"])
    encode = msgspec.json.Encoder().encode
    for table in TABLES:
        with (directory / f"{table}.ndjson").open("wb") as handle:
            for row in document["tables"].get(table, []):
                handle.write(encode(row) + b"\n")
    return directory


def peer(directory: Path) -> dict:
    """Its load and query seconds from inside, its peak RSS (KB) from `/usr/bin/time` (see scan_bench.measure)."""
    proc = subprocess.run(["/usr/bin/time", "-f", "%M", sys.executable, "-c", PEER, str(directory),
                           msgspec.json.encode(TABLES).decode(), CHECKS_SQL, msgspec.json.encode(CHECKS).decode()],
                          capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"the peer failed: {proc.stderr.strip()}")
    return {**msgspec.json.decode(proc.stdout.strip().splitlines()[-1]),
            "rss": int(proc.stderr.strip().splitlines()[-1])}


def run_peer(row: dict, _snapshot: Path, directory: Path) -> None:
    result = peer(directory)
    row["peer"] = (result["load"] + result["query"], result["rss"] / 1024 / 1024)
    row["peer load"], row["counts"] = result["load"], result["counts"]


def run_ours(row: dict, snapshot: Path, _directory: Path, jobs: int) -> None:
    row["scan"] = full_scan(snapshot)
    row["jobs"] = full_scan(snapshot, "--jobs", str(jobs))
    nothing = (float("nan"), float("nan"))  # a phase that does not apply to the file (scan_bench.measure)
    row["evaluate"] = measure(PHASES["load + estate + evaluate"], snapshot) or nothing
    row["parts"] = measure(PHASES["read + judge in parts (the default)"], snapshot) or nothing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--snapshot", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=1,
                        help="also time the full scan with --jobs N (default 1: one part at a time, in process)")
    args = parser.parse_args()
    directory = write_ndjson(args.snapshot)
    print(f"snapshot {args.snapshot}; NDJSON tables in {directory}", flush=True)
    rows = []
    for number in range(args.rounds):
        row: dict = {}
        ours = functools.partial(run_ours, jobs=args.jobs)
        for step in (run_peer, ours) if number % 2 == 0 else (ours, run_peer):
            step(row, args.snapshot, directory)
        rows.append(row)
        peer_s, peer_gb = row["peer"]
        print(f"round {number + 1}: peer {peer_s:.1f} s (load {row['peer load']:.1f}) {peer_gb:.2f} GB | "
              f"load+evaluate {row['evaluate'][0]:.1f} s {row['evaluate'][1]:.2f} GB | "
              f"in parts {row['parts'][0]:.1f} s {row['parts'][1]:.2f} GB | "
              f"scan {row['scan'][0]:.1f} s {row['scan'][1]:.2f} GB | "
              f"scan --jobs {args.jobs} {row['jobs'][0]:.1f} s {row['jobs'][1]:.2f} GB", flush=True)
    print("peer failures per check:", rows[-1]["counts"])
    print(f"{'median of ' + str(args.rounds) + ' rounds':44} {'seconds':>8} {'peak GB':>8} {'time x':>7} {'RSS x':>6}")
    peer_s = statistics.median(row["peer"][0] for row in rows)
    peer_gb = statistics.median(row["peer"][1] for row in rows)
    for name, key in (("DuckDB peer (load + checks)", "peer"), ("ours: load + estate + evaluate", "evaluate"),
                      ("ours: read + judge in parts", "parts"), ("ours: full scan, defaults (--jobs auto)", "scan"),
                      (f"ours: full scan, --jobs {args.jobs}", "jobs")):
        seconds = statistics.median(row[key][0] for row in rows)
        peak = statistics.median(row[key][1] for row in rows)
        print(f"{name:44} {seconds:8.1f} {peak:8.2f} {seconds / peer_s:7.1f} {peak / peer_gb:6.2f}")


if __name__ == "__main__":
    main()
