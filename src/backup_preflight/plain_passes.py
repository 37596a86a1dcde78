"""A scan's findings with its plain passes held as numbers, not objects (the engine gives them so, judging.py
joins the parts', every later stage reads them as a sequence of findings).

Seven in ten of a scan's findings are passes with nothing to say but their status: 12 million at 1,000,000
VMs, 1.3 GB as objects, and a child process forked to write a report copied the pages of every one it read
(docs/performance.md). The engine never makes one (engine.evaluate_held); a part judged in a child comes back
packed (packed.py), its plain passes the numbers they were (a VM and a policy each) and only its other
findings objects. Reading the findings in full makes each plain pass a Finding, in C, and lets it go once
read; reading only what needs attention (findings.with_status, without_status, annotated) never makes one.
A plain pass is never changed after judging: exemptions and baselines mark only failing, unknown and error
findings, which are objects, kept and changed in place, and the engine gives every finding of a VM with an
in-guest observation as an object (policy/observed.py).
"""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Container, Iterator
from itertools import chain, compress, islice, repeat
from operator import and_, eq
from typing import TypeVar, overload

from backup_preflight.findings import PASS, Finding, Held, Plain, as_objects

#: A plain pass's byte in PartFindings.plain; every other finding's is 0.
PLAIN = 1
_T = TypeVar("_T")


class _Read(Held):
    """Findings made as they are read: indexing reads up to the finding asked for (nothing in a scan does);
    equal to a list or other findings with equal findings in the same order, as a list is."""

    __slots__ = ()
    __hash__ = None  # type: ignore[assignment]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, list | Held):
            return NotImplemented
        return len(self) == len(other) and all(map(eq, self, other))

    @overload
    def __getitem__(self, index: int) -> Finding: ...

    @overload
    def __getitem__(self, index: slice) -> list[Finding]: ...

    def __getitem__(self, index: int | slice) -> Finding | list[Finding]:
        if isinstance(index, slice):
            return list(self)[index]
        at = index + len(self) if index < 0 else index
        if not 0 <= at < len(self):
            raise IndexError("finding index out of range")
        return next(islice(iter(self), at, None))


class PartFindings(_Read):
    """One part's findings in their order: each finding's VM and policy number, whether it is a plain pass
    (`plain`), and every finding that is not one as an object (`kept`, in order)."""

    __slots__ = ("_spans", "causes", "groups", "ids", "kept", "names", "plain", "policy", "policy_ids", "severities",
                 "subscriptions", "vm")

    def __init__(self, vms: tuple[tuple[str, ...], ...], policies: tuple[tuple[str, ...], ...], vm: array[int],
                 policy: array[int], plain: bytes, kept: list[Finding]) -> None:
        self.ids, self.names, self.subscriptions, self.groups = vms
        self.policy_ids, self.severities, self.causes = policies
        self.vm, self.policy, self.plain, self.kept = vm, policy, plain, kept
        self._spans: dict[tuple[int, int], tuple[int, int]] = {}

    def __len__(self) -> int:
        return len(self.plain)

    def __iter__(self) -> Iterator[Finding]:
        return self.read(0, len(self.plain))

    def resource_id(self, n: int) -> str:
        return self.ids[self.vm[n]]

    def read(self, start: int, end: int) -> Iterator[Finding]:
        """Findings `start` to `end` (not included), in order."""
        plain, objects = self.plain[start:end], self.kept_of(start, end)
        if len(objects) == len(plain):
            return iter(objects)
        made = self._passes(start, end, plain)
        return _interleaved(objects, made, plain) if objects else made

    def _passes(self, start: int, end: int, marks: bytes) -> Iterator[Finding]:
        """The plain passes from `start` to `end` that `marks` marks, made as findings (each VM number made once,
        read by every map); the policy's fields are repeated when every finding is of one policy, as in a
        scan's run."""
        vms, policy = list(compress(self.vm[start:end], marks)), self.policy[start:end]
        count = len(vms)
        if policy.count(policy[0]) == len(policy):
            ids, severities, causes = (repeat(column[policy[0]], count) for column in self._policy_columns)
        else:
            numbers = list(compress(policy, marks))
            ids, severities, causes = (map(column.__getitem__, numbers) for column in self._policy_columns)
        return map(Finding, ids, map(self.ids.__getitem__, vms), map(self.names.__getitem__, vms), repeat(PASS, count),
                   severities, causes, repeat("", count), repeat((), count), map(self.subscriptions.__getitem__, vms),
                   map(self.groups.__getitem__, vms), repeat(None, count))

    @property
    def _policy_columns(self) -> tuple[tuple[str, ...], ...]:
        return self.policy_ids, self.severities, self.causes

    def objects(self) -> Iterator[Finding]:
        return iter(self.kept)

    def plain_passes(self) -> Counter[tuple[str, str, str]]:
        return self.plain_of(0, len(self.plain))

    def plain_passes_of(self, ids: Container[str]) -> Iterator[Finding]:
        return self.plain_of_vms(0, len(self.plain), self.wanted(ids))

    def walk(self) -> Iterator[tuple[Plain | None, int, Iterator[Finding | int]]]:
        return self.walk_run(0, len(self.plain))

    def walk_run(self, start: int, end: int) -> Iterator[tuple[Plain | None, int, Iterator[Finding | int]]]:
        """Findings `start` to `end` as `findings.walk` gives them: with their plain passes as VM numbers when
        they are all of one policy (a scan's run), else made."""
        if start == end:
            return iter(())
        policy = self.policy[start:end]
        if policy.count(policy[0]) != len(policy):
            return as_objects(self.read(start, end))
        plain = self.plain[start:end]
        items = _interleaved(self.kept_of(start, end), compress(self.vm[start:end], plain), plain)
        return iter(((self, policy[0], items),))

    def made(self, vm: int, policy: int) -> Finding:
        return Finding(self.policy_ids[policy], self.ids[vm], self.names[vm], PASS, self.severities[policy],
                       self.causes[policy], "", (), self.subscriptions[vm], self.groups[vm])

    def wanted(self, ids: Container[str]) -> bytes:
        """For each of the part's VMs, whether its lowercase id is in `ids`."""
        return bytes(map(ids.__contains__, map(str.lower, self.ids)))

    def plain_of_vms(self, start: int, end: int, wanted: bytes) -> Iterator[Finding]:
        """The plain passes from `start` to `end` of the VMs `wanted` marks, made as findings, in order."""
        mask = bytes(map(and_, self.plain[start:end], map(wanted.__getitem__, self.vm[start:end])))
        if not mask.count(PLAIN):
            return iter(())
        return self._passes(start, end, mask)

    def plain_of(self, start: int, end: int) -> Counter[tuple[str, str, str]]:
        """The plain passes from `start` to `end`, counted by (policy id, severity, cause)."""
        numbers = Counter(compress(self.policy[start:end], self.plain[start:end]))
        return Counter({(self.policy_ids[n], self.severities[n], self.causes[n]): c for n, c in numbers.items()})

    def kept_of(self, start: int, end: int) -> list[Finding]:
        """The findings from `start` to `end` held as objects (none of them a plain pass), in order. Where they are
        among `kept` is counted once per range: a scan reads each of a part's runs, one per policy, at every
        filter (counted each time, a filter at 100,000 VMs took 0.065 s instead of 0.043 s)."""
        span = self._spans.get((start, end))
        if span is None:
            first = start - self.plain.count(PLAIN, 0, start)
            span = self._spans[start, end] = (first, first + (end - start) - self.plain.count(PLAIN, start, end))
        return self.kept[span[0]:span[1]]


#: A run of a scan's findings: a part's, from one number to another, or a list's whole.
Run = tuple[PartFindings, int, int] | list[Finding]


class ScanFindings(_Read):
    """A scan's findings in its order (policy, then VM id), as runs of parts' findings and of lists."""

    __slots__ = ("_count", "_runs")

    def __init__(self, runs: list[Run]) -> None:
        self._runs = runs
        self._count = sum(len(r) if isinstance(r, list) else r[2] - r[1] for r in runs)

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[Finding]:
        return chain.from_iterable(map(read_run, self._runs))

    def objects(self) -> Iterator[Finding]:
        return chain.from_iterable(r if isinstance(r, list) else r[0].kept_of(r[1], r[2]) for r in self._runs)

    def plain_passes_of(self, ids: Container[str]) -> Iterator[Finding]:
        marks: dict[int, bytes] = {}  # each part's VMs marked once: a part is read as one run per policy

        def of(part: PartFindings, start: int, end: int) -> Iterator[Finding]:
            wanted = marks.get(id(part))
            if wanted is None:
                wanted = marks[id(part)] = part.wanted(ids)
            return part.plain_of_vms(start, end, wanted)

        return chain.from_iterable(of(*run) for run in self._runs if not isinstance(run, list))

    def walk(self) -> Iterator[tuple[Plain | None, int, Iterator[Finding | int]]]:
        return chain.from_iterable(as_objects(r) if isinstance(r, list) else r[0].walk_run(r[1], r[2])
                                   for r in self._runs)

    def plain_passes(self) -> Counter[tuple[str, str, str]]:
        counts: Counter[tuple[str, str, str]] = Counter()
        for run in self._runs:
            if not isinstance(run, list):
                counts.update(run[0].plain_of(run[1], run[2]))
        return counts


def _interleaved(objects: list[Finding], plain_passes: Iterator[_T], marks: bytes) -> Iterator[Finding | _T]:
    """The objects and the plain passes (made, or their VM numbers) in the order the marks give, in C: each
    finding's mark picks the next object (0) or the next plain pass (PLAIN)."""
    return map(next, map((iter(objects), plain_passes).__getitem__, marks))


def read_run(run: Run) -> Iterator[Finding]:
    return iter(run) if isinstance(run, list) else run[0].read(run[1], run[2])
