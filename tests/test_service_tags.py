"""`--service-tags FILE`: both published shapes read, bad files rejected with the place named, the
file's identity recorded in results.json and checked by `verify`, and verdicts decided by it."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import pytest

from backup_preflight.errors import InputError
from backup_preflight.service_tags import load
from network_helpers import FIXTURES, NIC_ID, Estate, rule
from results_helpers import findings_of

from arg import vm_row
from cli_helpers import run

TAGS = FIXTURES / "service-tags.json"
STORAGE_WEST = ["20.38.108.0/23", "52.239.140.0/22"]


def az_output(values: list[dict]) -> dict:
    """`az network list-service-tags --location westeurope` output shape."""
    return {"changeNumber": "71", "cloud": "Public", "name": "Public",
            "id": "/subscriptions/s/providers/Microsoft.Network/serviceTags/Public", "nextLink": None,
            "type": "Microsoft.Network/serviceTags", "values": values}


def az_value(name: str, prefixes: list[str]) -> dict:
    return {"id": name, "name": name, "serviceTagChangeNumber": "3",
            "properties": {"addressPrefixes": prefixes, "changeNumber": "3", "region": "westeurope", "regionId": 18,
                           "state": "GA", "systemService": "AzureStorage", "networkFeatures": ["API", "NSG"]}}


def test_weekly_download_shape(tmp_path: Path) -> None:
    tags = load(TAGS)
    assert tags.sha256 == hashlib.sha256(TAGS.read_bytes()).hexdigest()
    assert (tags.change_number, tags.cloud) == ("331", "Public")
    assert [str(n) for n in tags.get("storage.westeurope") or ()][::17] == STORAGE_WEST
    assert tags.get("Storage.West Europe") == tags.get("STORAGE.WESTEUROPE")
    assert tags.get("AzureFrontDoor.Backend") is None
    gz = tmp_path / "tags.json.gz"
    gz.write_bytes(gzip.compress(TAGS.read_bytes()))
    assert load(gz).prefixes == tags.prefixes


def test_az_cli_and_powershell_shapes(tmp_path: Path) -> None:
    path = tmp_path / "az.json"
    path.write_text(json.dumps(az_output([az_value("Storage.WestEurope", STORAGE_WEST)])))
    tags = load(path)
    assert tags.change_number == "71"
    assert [str(n) for n in tags.get("Storage.WestEurope") or ()] == STORAGE_WEST
    pascal = tmp_path / "ps.json"
    pascal.write_text(json.dumps({"Values": [{"Name": "Storage.WestEurope",
                                              "Properties": {"AddressPrefixes": STORAGE_WEST}}]}))
    assert load(pascal).get("storage.westeurope") == tags.get("storage.westeurope")


@pytest.mark.parametrize(("doc", "problems"), [
    ([1, 2], ["/: not a service-tag file (ServiceTags_Public_*.json or `az network list-service-tags` output): "
              "found an array"]),
    ({"changeNumber": 1}, ["/: not a service-tag file (ServiceTags_Public_*.json or `az network list-service-tags` "
                           "output): found an object without a 'values' array"]),
    ({"values": [{"properties": {"addressPrefixes": []}}, {"name": "Storage", "properties": {}},
                 {"name": "Sql", "properties": {"addressPrefixes": ["10.0.0.0/8", "10.0.0.0/33", 7]}}]},
     ["/values/0: entry has no 'name' string",
      "/values/1/properties/addressPrefixes: tag 'Storage': expected an array of address prefixes, found null",
      "/values/2/properties/addressPrefixes/1: tag 'Sql': '10.0.0.0/33' is not an address prefix",
      "/values/2/properties/addressPrefixes/2: tag 'Sql': 7 is not an address prefix"]),
])
def test_bad_files_name_every_place(tmp_path: Path, doc: object, problems: list[str]) -> None:
    path = tmp_path / "tags.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(InputError) as caught:
        load(path)
    assert [f"{p.place}: {p.reason}" for p in caught.value.problems] == problems
    assert {p.file for p in caught.value.problems} == {str(path)}


def estate_rows() -> list[dict]:
    """A westeurope VM whose NIC NSG allows Storage.WestEurope's public ranges by CIDR, then denies Internet.

    A bare row list with the types spelled as ARM does (mixed case), not Resource Graph's lowercase.
    """
    estate = Estate()
    estate.nic_rules(rule("AllowStorageRanges", 100, "Allow", port=["443", "8443"],
                          dest=["20.0.0.0/8", "40.113.0.0/16", "51.105.0.0/16", "52.239.0.0/16"]),
                     rule("DenyInternet", 200, "Deny", dest="Internet"))
    estate.vnet["type"] = "Microsoft.Network/virtualNetworks"
    estate.nic["type"] = "Microsoft.Network/networkInterfaces"
    vm = vm_row("vm-cidr", nics=[NIC_ID])
    vm["type"] = "Microsoft.Compute/virtualMachines"
    return [vm, *estate.rows]


def net_findings(results: Path) -> dict[str, str]:
    doc = json.loads(results.read_text())
    return {f["policyId"]: f["status"] for f in findings_of(doc) if f["policyId"].startswith("VMBK-NET")}


def test_scan_decides_cidr_rules_with_the_file_and_records_it(tmp_path: Path) -> None:
    snap = tmp_path / "rows.json"
    snap.write_text(json.dumps(estate_rows()))
    run("scan", "--snapshot", snap, "--output-dir", tmp_path / "plain")
    assert net_findings(tmp_path / "plain" / "results.json") == {"VMBK-NET-001": "unknown", "VMBK-NET-002": "unknown"}
    run("scan", "--snapshot", snap, "--service-tags", TAGS, "--output-dir", tmp_path / "tags")
    results = tmp_path / "tags" / "results.json"
    assert net_findings(results) == {"VMBK-NET-001": "pass", "VMBK-NET-002": "pass"}
    recorded = json.loads(results.read_text())["scan"]["serviceTags"]
    assert recorded == {"path": str(TAGS), "sha256": hashlib.sha256(TAGS.read_bytes()).hexdigest(),
                        "changeNumber": "331", "cloud": "Public", "tags": 12}
    assert "serviceTags" not in json.loads((tmp_path / "plain" / "results.json").read_text())["scan"]

    verified = run("verify", "--snapshot", snap, "--results", results, "--service-tags", TAGS)
    assert verified.returncode == 0, verified.stdout
    assert f"ok       service tags sha256: {recorded['sha256']}" in verified.stdout
    missing = run("verify", "--snapshot", snap, "--results", results)
    assert missing.returncode == 1
    assert f"MISMATCH service tags sha256: results.json has {recorded['sha256']}, re-evaluation has none" \
        in missing.stdout


def test_bad_service_tag_file_exits_2_before_writing_anything(tmp_path: Path) -> None:
    bad = tmp_path / "tags.json"
    bad.write_text('{"values": [{"name": "Storage", "properties": {"addressPrefixes": ["20.60.0.0/16", "x"]}}]}')
    proc = run("scan", "--demo", "--service-tags", bad, "--output-dir", tmp_path / "out")
    assert proc.returncode == 2
    assert proc.stderr == (f"backup-preflight: error: {bad}: /values/0/properties/addressPrefixes/1: "
                           "tag 'Storage': 'x' is not an address prefix\n")
    assert not (tmp_path / "out").exists()
    missing = run("scan", "--demo", "--service-tags", tmp_path / "nope.json", "--output-dir", tmp_path / "out")
    assert missing.returncode == 2 and "nope.json: no such file" in missing.stderr
