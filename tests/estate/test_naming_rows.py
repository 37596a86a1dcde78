"""Rows placed by the VM they name (SQL VMs, protected items, backup jobs, guest configuration assignments) are
decoded only as far as placing reads them (parts._naming): placed exactly where the whole row places them."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backup_preflight.errors import InputError
from backup_preflight.estate import parts
from backup_preflight.estate.index import NamingProperties
from backup_preflight.estate.parts import owner

VM = "/subscriptions/S1/resourceGroups/RG/providers/Microsoft.Compute/virtualMachines/vm1"
VAULT = "/subscriptions/s3/resourceGroups/rg/providers/Microsoft.RecoveryServices/vaults/v"
IDS = {
    parts.SQL_VM_TYPE: "/subscriptions/s2/resourceGroups/rg/providers/Microsoft.SqlVirtualMachine/sqlVirtualMachines/v",
    parts.PROTECTED_ITEM_TYPE: f"{VAULT}/backupFabrics/Azure/protectionContainers/c/protectedItems/i",
    parts.BACKUP_JOB_TYPE: f"{VAULT}/backupJobs/j",
    parts.GC_ASSIGNMENT_TYPE: f"{VM}/providers/Microsoft.GuestConfiguration/guestConfigurationAssignments/a",
}


class Recording(dict[str, Any]):
    """Properties that note every name read of them."""

    def __init__(self, seen: set[str]) -> None:
        super().__init__()
        self.seen = seen

    def get(self, key: str, default: Any = None) -> Any:
        self.seen.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> Any:
        self.seen.add(key)
        return super().__getitem__(key)


def test_the_decoded_properties_are_exactly_those_placing_reads() -> None:
    seen: set[str] = set()
    for kind, rid in IDS.items():
        owner("resources", {"id": rid, "type": kind, "properties": Recording(seen)})
    assert seen == set(NamingProperties.__struct_fields__)


values = st.one_of(st.none(), st.sampled_from(["", VM, VM.upper(), "AzureIaasVM", "azureworkload", "AzureIaaSVMJobV2",
                                               "AzureStorage", "MAB"]),
                   st.integers(-2, 2), st.booleans(), st.just([VM]), st.just({"id": VM}))
names = st.sampled_from([*NamingProperties.__struct_fields__, "entityFriendlyName", "status", "VirtualMachineId"])
properties = st.one_of(st.none(), st.dictionaries(names, values, max_size=6))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(IDS)), properties, st.booleans(), st.dictionaries(st.sampled_from(["name", "location"]),
                                                                                 values, max_size=2))
def test_a_row_decoded_in_part_is_placed_as_the_whole_row(kind: str, props: dict[str, Any] | None, absent: bool,
                                                          more: dict[str, Any]) -> None:
    """The oracle is the whole row, decoded as placing did before: null, absent and wrong-typed properties,
    other properties and other fields included."""
    row: dict[str, Any] = {"id": IDS[kind], "type": kind, **more}
    if not absent:
        row["properties"] = props
    text = json.dumps(row).encode()
    assert owner("resources", parts._naming(text, IDS[kind], kind, "s.json", 2)) == owner(
        "resources", {**msgspec.json.decode(text), "type": kind})


def test_a_naming_property_msgspec_cannot_decode_is_an_input_error_naming_its_place() -> None:
    """A number out of range is decoded whole, as loading the file does, which says where (the CLI's exit 2:
    tests/estate/test_read_apart.py); one elsewhere in the row is left to the part that reads it whole."""
    kind, rid = parts.PROTECTED_ITEM_TYPE, IDS[parts.PROTECTED_ITEM_TYPE]
    named = b'{"id":"%s","properties":{"sourceResourceId":1e999}}' % rid.encode()
    column = named.index(b"1e999") + 1
    with pytest.raises(InputError, match=rf"^s\.json: line 7 column {column}: 1e999 is not a JSON number"):
        parts._naming(named, rid, kind, "s.json", 7)
    elsewhere = b'{"id":"%s","properties":{"size":1e999,"sourceResourceId":"%s"}}' % (rid.encode(), VM.encode())
    assert parts._naming(elsewhere, rid, kind, "s.json", 7) == {"id": rid, "type": kind,
                                                                "properties": {"sourceResourceId": VM}}
