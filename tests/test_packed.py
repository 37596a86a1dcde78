"""A part's findings packed in a child process and unpacked in the run's come back equal, in order, with a
VM's strings shared by its findings and equal evidence kept once."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from backup_preflight.findings import STATUSES, Finding, count_by, of_vms, plain_passes
from backup_preflight.packed import Unpacker, pack
from held_helpers import packed_part, part_of, plain

#: Small pools, so that findings share VMs and policies; a VM id under two names and a policy id under two
#: severities are two entries of a part's tables; a status the findings module does not know travels as it is.
findings = st.builds(
    Finding,
    st.sampled_from(["P-1", "P-2", "P-3"]),
    st.sampled_from(["/subscriptions/s/vm/a", "/SUBSCRIPTIONS/S/VM/A", "/subscriptions/s/vm/b", "query:q/0"]),
    st.sampled_from(["a", "A", "b"]),
    st.sampled_from([*STATUSES, "odd"]),
    st.sampled_from(["high", "low"]),
    st.sampled_from(["outbound-connectivity", "vm-agent"]),
    st.sampled_from(["", "Not assessed: x", "vm a fails"]),
    st.lists(st.sampled_from(["e1", "e2", "disagreement: probe"]), max_size=3).map(tuple),
    st.sampled_from(["s", "S", ""]),
    st.sampled_from(["rg", "RG", ""]),
    st.one_of(st.none(), st.fixed_dictionaries({"observedInGuest": st.fixed_dictionaries({"agrees": st.booleans()})})),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(findings, max_size=40), st.data())
def test_unpacked_findings_are_the_packed_ones(found: list[Finding], data: st.DataObject) -> None:
    """Read whole, from any finding to any later one, or only what is held as objects."""
    part = packed_part(found)
    assert len(part) == len(found) and list(part) == found
    start = data.draw(st.integers(0, len(found)))
    end = data.draw(st.integers(start, len(found)))
    assert list(part.read(start, end)) == found[start:end] == part[start:end]
    assert part.kept_of(start, end) == [f for f in found[start:end] if not plain(f)]
    assert list(part.objects()) == [f for f in found if not plain(f)]
    assert count_by(part, ("policy_id", "status")) == Counter((f.policy_id, f.status) for f in found)
    assert sum(plain_passes(part).values()) == sum(map(plain, found))
    some = {"/subscriptions/s/vm/a", "/subscriptions/s/vm/b"}
    assert sorted(map(repr, of_vms(part, some))) == sorted(repr(f) for f in found if f.resource_id.lower() in some)
    if found:
        assert part[-1] == found[-1] and part[start if start < len(found) else 0] == found[start % len(found)]


def _engine_like(vm: int, policy: str, ids: list[str], evidence: tuple[str, ...]) -> Finding:
    return Finding(policy, ids[vm], f"vm{vm}", "fail" if evidence else "pass", "high", "c", "m" if evidence else "",
                   evidence, "sub", "rg")


def test_a_vm_s_strings_and_equal_evidence_are_one_object_after_unpacking() -> None:
    ids = [f"/subscriptions/sub/resourceGroups/rg/vm/vm{i}" for i in range(3)]
    part = [_engine_like(vm, policy, ids, ("e",) if vm == 1 else ()) for policy in ("P-1", "P-2") for vm in range(3)]
    unpacker = Unpacker()
    first, second = list(unpacker.unpack(pack(part_of(part)))), list(unpacker.unpack(pack(part_of(part))))
    assert first == part == second
    assert first[0].resource_id is first[3].resource_id and first[0].resource_name is first[3].resource_name
    assert first[1].evidence is first[4].evidence is second[1].evidence, "equal evidence is kept once"
    assert first[0].subscription_id is second[2].subscription_id, "subscriptions and groups are interned"
