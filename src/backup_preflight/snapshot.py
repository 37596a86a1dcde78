"""Snapshots: the raw rows exactly as Azure returned them, plus scope and collection errors.

A snapshot is the only input of everything downstream, so a saved one replays to identical
results. Row types are kept in Resource Graph's lowercase whatever case a file spells them in.
Three input shapes are accepted: our own format (`.json` / `.json.gz`), the JSON that
`az graph query` prints (`{"data": [...]}`, objectArray or table format) and a bare list of rows.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import orjson

from backup_preflight.atomic import atomic_writer
from backup_preflight.errors import InputError, Problem, gather
from backup_preflight.gcpause import gc_paused

SCHEMA_VERSION = 1

#: Resource Graph tables, and the row types that belong to each when a file does not say.
GRAPH_TABLES = ("resources", "recoveryservicesresources", "guestconfigurationresources")
#: Tables filled from other APIs or probes, keyed by the VM id they describe.
SIDE_TABLES = ("instanceviews", "guestfacts", "metrics")
KNOWN_TABLES = GRAPH_TABLES + SIDE_TABLES


def table_for_type(resource_type: str) -> str:
    """The Resource Graph table a row of this `type` (in any case) lives in.

    Only what is inside a vault (protected items, backup policies, jobs) is in
    recoveryservicesresources; the vaults themselves are in `resources`, so a file listing vaults
    says nothing about which VMs are protected.
    """
    t = resource_type.lower()
    if t.startswith(("microsoft.recoveryservices/vaults/", "microsoft.dataprotection/backupvaults/")):
        return "recoveryservicesresources"
    if t.startswith("microsoft.guestconfiguration/"):
        return "guestconfigurationresources"
    return "resources"


@dataclass(slots=True)
class SourceFile:
    """One file read into a snapshot, with the SHA-256 of the bytes actually read."""

    path: str
    sha256: str
    kind: str  # "snapshot", "az-graph-query", "rows"


@dataclass(slots=True)
class Snapshot:
    """Raw tables, the collection scope and the errors that make parts of it incomplete."""

    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    scope: dict[str, Any] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    queries: dict[str, dict[str, Any]] = field(default_factory=dict)
    collected_at: str | None = None
    sources: list[SourceFile] = field(default_factory=list)

    @property
    def sha256(self) -> str:
        """One hash for all inputs: of the single file, or of the list of file hashes in order."""
        if len(self.sources) == 1:
            return self.sources[0].sha256
        joined = "\n".join(f"{s.sha256}  {Path(s.path).name}" for s in self.sources)
        return hashlib.sha256(joined.encode()).hexdigest()

    def table(self, name: str) -> list[dict[str, Any]] | None:
        """Rows of a table, or None when the table was not collected at all."""
        return self.tables.get(name)

    def to_document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "schemaVersion": SCHEMA_VERSION,
            "collectedAt": self.collected_at,
            "scope": self.scope,
            "tables": self.tables,
            "errors": self.errors,
        }
        if self.queries:
            doc["queries"] = self.queries
        return doc

    def merge(self, other: Snapshot) -> None:
        """Add another snapshot's rows; a row whose id repeats in the same table replaces the older."""
        for name, rows in other.tables.items():
            mine = self.tables.setdefault(name, [])
            if not mine:
                mine.extend(rows)
                continue
            position = {_row_key(r): i for i, r in enumerate(mine)}
            for row in rows:
                key = _row_key(row)
                if key in position:
                    mine[position[key]] = row
                else:
                    position[key] = len(mine)
                    mine.append(row)
        for key, value in other.scope.items():
            if isinstance(value, list):
                have = self.scope.setdefault(key, [])
                have.extend(v for v in value if v not in have)
            else:
                self.scope.setdefault(key, value)
        self.errors.extend(other.errors)
        self.queries.update(other.queries)
        if other.collected_at and (not self.collected_at or other.collected_at > self.collected_at):
            self.collected_at = other.collected_at
        self.sources.extend(other.sources)


def _row_key(row: dict[str, Any]) -> str:
    rid = row.get("id")
    key = rid.lower() if isinstance(rid, str) else repr(rid)
    # Metrics rows repeat the VM id once per metric name.
    name = row.get("name") if "data" in row else None
    return f"{key}|{name}" if isinstance(name, str) else key


def _read_raw(path: Path) -> bytes:
    """The file's bytes as stored (what its SHA-256 is computed on)."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InputError.one(str(path), "", "no such file") from None
    except OSError as exc:
        raise InputError.one(str(path), "", f"cannot read file: {exc.strerror or exc}") from None


def _decompress(raw: bytes, label: str) -> bytes:
    """Gunzip when the bytes are gzip (by magic number, whatever the file is called)."""
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError) as exc:
        raise InputError.one(label, "", f"not a readable gzip file: {exc}") from None


def read_json(path: Path) -> tuple[Any, str]:
    """Parse a JSON file (gzipped or not); return it with the SHA-256 of the bytes actually read."""
    raw = _read_raw(path)
    return parse_json(_decompress(raw, str(path)), str(path)), hashlib.sha256(raw).hexdigest()


def parse_json(data: bytes, label: str) -> Any:
    """Parse JSON, turning a syntax error into an InputError that names line and column.

    msgspec parses a 900 MB snapshot in about 60 % of the CPU time of the standard library, with
    the same memory (docs/performance.md). On malformed input the standard library parses again,
    only to say where the error is in lines and columns (or to accept what only it allows, NaN).
    """
    try:
        with gc_paused():
            return msgspec.json.decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError):
        pass
    try:
        return json.loads(data)
    except UnicodeDecodeError as exc:
        return _raise(label, f"byte {exc.start}", "not UTF-8 text, expected JSON")
    except json.JSONDecodeError as exc:
        reason = "file is empty, expected JSON" if not data.strip() else f"not valid JSON: {exc.msg}"
        return _raise(label, f"line {exc.lineno} column {exc.colno}", reason)


def _raise(label: str, place: str, reason: str) -> Any:
    raise InputError.one(label, place, reason)


def load(path: Path) -> Snapshot:
    """Read one snapshot file of any accepted shape, validating what downstream relies on."""
    label = str(path)
    doc, digest = read_json(path)
    snap = from_document(doc, label)
    kind = "snapshot" if isinstance(doc, dict) and "tables" in doc else (
        "az-graph-query" if isinstance(doc, dict) else "rows")
    snap.sources = [SourceFile(path=label, sha256=digest, kind=kind)]
    return snap


def load_many(paths: list[Path]) -> Snapshot:
    """Read and merge several snapshot files; every file's problems are reported together."""
    merged = Snapshot()
    for snap in gather(paths, load):
        merged.merge(snap)
    return merged


def from_document(doc: Any, label: str) -> Snapshot:
    """Build a Snapshot from parsed JSON of any accepted shape."""
    if isinstance(doc, list):
        return _from_rows(doc, label, "")
    if not isinstance(doc, dict):
        raise InputError.one(label, "/", f"expected a JSON object or array, found {json_kind(doc)}")
    if "tables" in doc:
        return _from_snapshot(doc, label)
    if "data" in doc:
        data = doc["data"]
        if isinstance(data, dict) and "columns" in data and "rows" in data:
            data = _table_format_rows(data, label)
        if not isinstance(data, list):
            raise InputError.one(label, "/data", f"expected an array of rows, found {json_kind(data)}")
        snap = _from_rows(data, label, "/data")
        missing = _truncation(doc, len(data))
        if missing:
            snap.errors.append({"scope": label, "table": ", ".join(sorted(snap.tables)) or "resources",
                                "status": "truncated",
                                "message": f"az graph query output is truncated: {missing}; the rows of the "
                                           "other pages were never read, so this file is not a complete "
                                           "estate (fetch every page, or use backup-preflight collect)"})
        return snap
    raise InputError.one(
        label, "/", "not a backup-preflight snapshot (no 'tables') nor az graph query output (no 'data')")


def _truncation(doc: dict[str, Any], rows: int) -> str | None:
    """Why an az graph query / Resource Graph response holds only part of its result, else None.

    The CLI prints `skip_token` and `total_records`, the REST API `$skipToken` and `totalRecords`;
    a response with fewer rows than the total, or a continuation token and no total, is one page.
    """
    total = next((doc[k] for k in ("total_records", "totalRecords") if _is_count(doc.get(k))), None)
    token = next((doc[k] for k in ("skip_token", "$skipToken", "skipToken") if doc.get(k)), None)
    flagged = str(doc.get("resultTruncated", doc.get("result_truncated"))).lower() == "true"
    if total is not None and rows < total:
        return f"{rows} of {total} rows" + (" (a skip_token names the next page)" if token else "")
    if token and total is None:
        return f"{rows} rows and a skip_token naming a next page"
    if flagged:
        return f"{rows} rows, and Resource Graph marked the result truncated (resultTruncated)"
    return None


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _table_format_rows(data: dict[str, Any], label: str) -> list[dict[str, Any]]:
    columns = data.get("columns")
    if not isinstance(columns, list) or not all(isinstance(c, dict) and "name" in c for c in columns):
        raise InputError.one(label, "/data/columns", "expected an array of {name, type} columns")
    names = [c["name"] for c in columns]
    rows = []
    for i, values in enumerate(data["rows"]):
        if not isinstance(values, list) or len(values) != len(names):
            raise InputError.one(label, f"/data/rows/{i}", f"expected an array of {len(names)} values")
        rows.append(dict(zip(names, values, strict=True)))
    return rows


def _from_rows(rows: list[Any], label: str, pointer: str) -> Snapshot:
    problems: list[Problem] = []
    tables: dict[str, list[dict[str, Any]]] = {}
    for i, row in enumerate(rows):
        where = f"{pointer}/{i}"
        if _check_graph_row(row, label, where, problems):
            _fold_type(row)
            tables.setdefault(table_for_type(row["type"]), []).append(row)
    if problems:
        raise InputError(problems)
    return Snapshot(tables=tables)


def _from_snapshot(doc: dict[str, Any], label: str) -> Snapshot:
    version = doc.get("schemaVersion")
    if version != SCHEMA_VERSION:
        raise InputError.one(label, "/schemaVersion",
                             f"unsupported snapshot schemaVersion {version!r}, expected {SCHEMA_VERSION}")
    tables = doc.get("tables")
    if not isinstance(tables, dict):
        raise InputError.one(label, "/tables", f"expected an object of tables, found {json_kind(tables)}")
    problems: list[Problem] = []
    for name, rows in tables.items():
        where = f"/tables/{name}"
        if not isinstance(rows, list):
            problems.append(Problem(label, where, f"expected an array of rows, found {json_kind(rows)}"))
            continue
        graph = name.lower() in GRAPH_TABLES
        check = _check_graph_row if graph else _check_side_row
        for i, row in enumerate(rows):
            if check(row, label, f"{where}/{i}", problems) and graph:
                _fold_type(row)
    errors = doc.get("errors", [])
    if not isinstance(errors, list):
        problems.append(Problem(label, "/errors", f"expected an array, found {json_kind(errors)}"))
        errors = []
    scope = doc.get("scope") or {}
    if not isinstance(scope, dict):
        problems.append(Problem(label, "/scope", f"expected an object, found {json_kind(scope)}"))
        scope = {}
    queries = doc.get("queries") or {}
    if not isinstance(queries, dict):
        problems.append(Problem(label, "/queries", f"expected an object, found {json_kind(queries)}"))
        queries = {}
    if problems:
        raise InputError(problems)
    collected = doc.get("collectedAt")
    return Snapshot(tables=_fold_table_names(tables), scope=scope, errors=errors, queries=queries,
                    collected_at=collected if isinstance(collected, str) else None)


def _fold_table_names(tables: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """Table names ignore case, as in KQL: `RecoveryServicesResources` is recoveryservicesresources."""
    if all(name == name.lower() for name in tables):
        return tables
    folded: dict[str, list[dict[str, Any]]] = {}
    for name, rows in tables.items():
        folded.setdefault(name.lower(), []).extend(rows)
    return folded


def _fold_type(row: dict[str, Any]) -> None:
    """ARM types ignore case; rows keep Resource Graph's lowercase, so every stage compares them exactly
    (a bare list of REST bodies says `Microsoft.Network/virtualNetworks`)."""
    rtype = row["type"]
    if not rtype.islower():
        row["type"] = rtype.lower()


def _check_graph_row(row: Any, label: str, where: str, problems: list[Problem]) -> bool:
    if not isinstance(row, dict):
        problems.append(Problem(label, where, f"expected a row object, found {json_kind(row)}"))
        return False
    ok = True
    for key in ("id", "type"):
        if not isinstance(row.get(key), str) or not row.get(key):
            problems.append(Problem(label, f"{where}/{key}" if key in row else where,
                                    f"row has no '{key}' string" if key not in row
                                    else f"'{key}' must be a non-empty string, found {json_kind(row[key])}"))
            ok = False
    props = row.get("properties")
    if props is not None and not isinstance(props, dict):
        problems.append(Problem(label, f"{where}/properties",
                                f"'properties' must be an object, found {json_kind(props)}"))
        ok = False
    return ok


def _check_side_row(row: Any, label: str, where: str, problems: list[Problem]) -> bool:
    if not isinstance(row, dict):
        problems.append(Problem(label, where, f"expected a row object, found {json_kind(row)}"))
        return False
    if not isinstance(row.get("id"), str) or not row["id"]:
        problems.append(Problem(label, where, "row has no 'id' string naming the VM"))
        return False
    return True


def json_kind(value: Any) -> str:
    """How an input error names what it found instead: "an object", "a string", …"""
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
            type(None): "null", int: "a number", float: "a number"}.get(type(value), type(value).__name__)


def save(snap: Snapshot, path: Path) -> str:
    """Write the snapshot (gzipped when the name ends in .gz) atomically; return its SHA-256."""
    data = orjson.dumps(snap.to_document())
    if path.name.endswith(".gz"):
        data = gzip.compress(data, compresslevel=6, mtime=0)
    with atomic_writer(path, "wb") as handle:
        handle.write(data)
    return hashlib.sha256(data).hexdigest()


def query_key(kql: str) -> str:
    """The key under which a custom query's rows are stored: SHA-256 of its trimmed text."""
    return hashlib.sha256(kql.strip().encode()).hexdigest()
