"""Compiled conditions with three-valued logic, and the explanations that become evidence.

A condition tree is compiled once per policy (parameters already substituted, regexes
compiled, field paths checked) into nodes whose `eval` returns True, False or None
(unknown). `explain` is only called for findings that are not a pass: it says, in words,
which facts decided the verdict or were missing. A pass says nothing, unless it rests on something
the snapshot cannot show (`assumptions`: a network path that assumes no on-premises default route).

    allOf  false if any part is false, else unknown if any part is unknown, else true
    anyOf  true if any part is true, else unknown if any part is unknown, else false
    not    keeps unknown
    exists always definite
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from backup_preflight.policy.operators import OPERATORS, OperandError, Operator
from backup_preflight.policy.paths import MISSING, FieldPath, PathChecker, PathError, check_path

Tri = bool | None
Facts = Mapping[str, Any]


class ConditionError(ValueError):
    """A condition that cannot be compiled; `pointer` is its JSON pointer inside the policy."""

    def __init__(self, pointer: str, reason: str) -> None:
        super().__init__(reason)
        self.pointer = pointer
        self.reason = reason


@dataclass(slots=True)
class Context:
    """What a condition may see besides the VM's facts: the current `count` element."""

    element: Any = None


class Node:
    """A compiled condition."""

    #: Whether a pass may rest on an assumption; only then does the engine ask `assumptions`.
    assumes = False

    def eval(self, facts: Facts, ctx: Context) -> Tri:
        raise NotImplementedError

    def explain(self, facts: Facts, ctx: Context) -> list[str]:
        """Sentences saying why this node has the value `eval` gives."""
        raise NotImplementedError

    def assumptions(self, facts: Facts, ctx: Context) -> list[str]:
        """What a true value of this node takes for granted without having seen it."""
        return []

    def reads(self) -> list[FieldPath]:
        """Every fact path the verdict and its explanation depend on (a `count`'s array whole, which holds
        what its `where` reads of each element)."""
        raise NotImplementedError


class _Junction(Node):
    """allOf and anyOf: the first part equal to `decisive` decides; otherwise unknown wins."""

    decisive: bool

    def __init__(self, parts: list[Node]) -> None:
        self.parts = parts
        self.assumes = any(part.assumes for part in parts)

    def assumptions(self, facts: Facts, ctx: Context) -> list[str]:
        return [line for part in self.parts if part.assumes and part.eval(facts, ctx) is True
                for line in part.assumptions(facts, ctx)]

    def reads(self) -> list[FieldPath]:
        return [path for part in self.parts for path in part.reads()]

    def eval(self, facts: Facts, ctx: Context) -> Tri:
        unknown = False
        decisive = self.decisive
        for part in self.parts:
            value = part.eval(facts, ctx)
            if value is decisive:
                return decisive
            if value is None:
                unknown = True
        return None if unknown else not decisive


class AllOf(_Junction):
    decisive = False

    def explain(self, facts: Facts, ctx: Context) -> list[str]:
        return _explain_parts(self.parts, self.eval(facts, ctx), facts, ctx)


class AnyOf(_Junction):
    decisive = True

    def explain(self, facts: Facts, ctx: Context) -> list[str]:
        value = self.eval(facts, ctx)
        parts = self.parts
        if value is False:
            # A branch whose first condition (its guard, e.g. osType equals Windows) is false
            # says nothing about why the VM fails; explain the branches that did apply.
            guarded = [p for p in parts if not (isinstance(p, AllOf) and p.parts[0].eval(facts, ctx) is False)]
            parts = guarded or parts
        return _explain_parts(parts, value, facts, ctx)


def _explain_parts(parts: list[Node], value: Tri, facts: Facts, ctx: Context) -> list[str]:
    """Explain the parts that carry the verdict: the false ones of a false allOf, and so on."""
    out: list[str] = []
    for part in parts:
        if part.eval(facts, ctx) is value:
            out.extend(part.explain(facts, ctx))
    return out


class Not(Node):
    def __init__(self, part: Node) -> None:
        self.part = part

    def reads(self) -> list[FieldPath]:
        return self.part.reads()

    def eval(self, facts: Facts, ctx: Context) -> Tri:
        value = self.part.eval(facts, ctx)
        return None if value is None else not value

    def explain(self, facts: Facts, ctx: Context) -> list[str]:
        reasons = self.part.explain(facts, ctx)
        if self.part.eval(facts, ctx) is None:
            return reasons  # "not" keeps unknown, and the reason is the same missing fact
        return [f"not ({s})" for s in reasons]


class Operand:
    """Where a leaf's left-hand value comes from (a count gives a span instead: CountOperand.span)."""

    label: str

    def value(self, facts: Facts, ctx: Context) -> Any:
        raise NotImplementedError


class FieldOperand(Operand):
    def __init__(self, path: FieldPath, relative: bool) -> None:
        self.path = path
        self.relative = relative
        self.label = path.text
        self._get = path.get

    def value(self, facts: Facts, ctx: Context) -> Any:
        return self._get(ctx.element if self.relative else facts)


class ValueOperand(Operand):
    def __init__(self, value: Any) -> None:
        self.constant = value
        self.label = f"value {json.dumps(value)}"

    def value(self, facts: Facts, ctx: Context) -> Any:
        return self.constant


class CountOperand(Operand):
    """Number of array elements for which `where` holds.

    An element whose `where` is unknown may or may not count, so the count is a span: the
    definite matches, up to those plus the undecided ones. A comparison that holds (or fails)
    for every number in the span is decided; only one the undecided elements could change is
    unknown.
    """

    def __init__(self, path: FieldPath, relative: bool, where: Node | None) -> None:
        self.array = FieldOperand(path, relative)
        self.where = where
        self.label = f"count of {path.text}" + (" matching the where condition" if where else "")

    def reads(self) -> list[FieldPath]:
        """The array (an element's own array is inside its enclosing count's) and what `where` reads outside
        the element."""
        where = [] if self.where is None else self.where.reads()
        return where if self.array.relative else [self.array.path, *where]

    def span(self, facts: Facts, ctx: Context) -> tuple[int, int] | None:
        """(definite matches, definite plus undecided); None when the array was not collected."""
        items = self.array.value(facts, ctx)
        if items is None:
            return 0, 0
        if not isinstance(items, list):
            return None
        if self.where is None:
            return len(items), len(items)
        matched = undecided = 0
        inner = Context(element=None)
        for item in items:
            inner.element = item
            verdict = self.where.eval(facts, inner)
            if verdict is None:
                undecided += 1
            else:
                matched += verdict
        return matched, matched + undecided

    def undecided(self, facts: Facts, ctx: Context) -> list[str]:
        """Why the first element whose `where` is unknown could not be assessed."""
        items = self.array.value(facts, ctx)
        inner = Context(element=None)
        for item in items if self.where is not None and isinstance(items, list) else ():
            inner.element = item
            if self.where.eval(facts, inner) is None:
                return self.where.explain(facts, inner)
        return []


def _settled(test: Callable[[Any, Any], Tri], span: tuple[int, int], expected: Any) -> Tri:
    """The comparison's value if it is the same for every count in the span, else unknown."""
    low, high = span
    first = test(low, expected)
    for n in range(low + 1, high + 1):
        if test(n, expected) is not first:
            return None
    return first


class Leaf(Node):
    def __init__(self, operand: Operand, operator: Operator, expected: Any, shown: Any) -> None:
        self.operand = operand
        self.operator = operator
        self.expected = expected
        self.shown = shown
        self.is_exists = operator.name == "exists"
        self.assumes = operator.name == "outboundAllowed"
        self._count = operand if isinstance(operand, CountOperand) else None
        # Bound once: eval runs for every (policy, VM) pair.
        self._value = operand.value
        self._test = operator.test

    def reads(self) -> list[FieldPath]:
        if self._count is not None:
            return self._count.reads()
        if isinstance(self.operand, FieldOperand):  # a field of an element is read with its count's array
            return [] if self.operand.relative else [self.operand.path]
        return []  # a value

    def eval(self, facts: Facts, ctx: Context) -> Tri:
        if self._count is not None:
            span = self._count.span(facts, ctx)
            if self.is_exists:
                return (span is not None) == self.expected
            return None if span is None else _settled(self._test, span, self.expected)
        actual = self._value(facts, ctx)
        if self.is_exists:
            return (actual is not MISSING and actual is not None) == self.expected
        if actual is MISSING:
            return None
        return self._test(actual, self.expected)

    def assumptions(self, facts: Facts, ctx: Context) -> list[str]:
        actual = self._value(facts, ctx) if self.assumes else MISSING
        return [] if actual is MISSING else list(actual.outbound(self.expected).assumptions)

    def explain(self, facts: Facts, ctx: Context) -> list[str]:
        if self._count is not None:
            return self._explain_count(self._count, facts, ctx)
        actual = self.operand.value(facts, ctx)
        label = self.operand.label
        if actual is MISSING and not self.is_exists:
            why = None if self.operand.relative else unknown_reason(facts, self.operand.path.text)
            return [f"{label} is unknown: {why}" if why else f"{label} was not collected"]
        if self.operator.name == "outboundAllowed":
            return list(actual.outbound(self.expected).evidence)
        shown_actual = "absent" if actual is MISSING or actual is None else json.dumps(actual, default=str)
        return [self._sentence(label, shown_actual, self.eval(facts, ctx))]

    def _explain_count(self, count: CountOperand, facts: Facts, ctx: Context) -> list[str]:
        span = count.span(facts, ctx)
        if span is None:
            return [f"{count.array.label} was not collected"]
        low, high = span
        if low == high:
            return [self._sentence(count.label, str(low), self.eval(facts, ctx))]
        shown_actual = f"between {low} and {high} ({high - low} element(s) could not be assessed)"
        verdict = self.eval(facts, ctx)
        if verdict is None:
            sentence = (f"{count.label} is {shown_actual}: {self.operator.name} "
                        f"{json.dumps(self.shown)} is undecided")
            return [sentence, *count.undecided(facts, ctx)]
        return [self._sentence(count.label, shown_actual, verdict)]

    def _sentence(self, label: str, shown_actual: str, verdict: Tri) -> str:
        shown = json.dumps(self.shown)
        if verdict is None:
            return f"{label} is {shown_actual}, which cannot be compared by {self.operator.name} with {shown}"
        return f"{label} is {shown_actual}: {self.operator.name} {shown} {'holds' if verdict else 'does not hold'}"


#: The fact in which the estate says why a fact is absent although its source was collected.
REASONS_FIELD = "unknownReasons"


def unknown_reason(facts: Facts, path: str) -> str | None:
    """The estate's reason for the absence of `path` or of the fact containing it, if it gave one."""
    reasons = facts.get(REASONS_FIELD)
    if not isinstance(reasons, Mapping):
        return None
    parts = path.split(".")
    return next((reasons[key] for key in (".".join(parts[:n]) for n in range(len(parts), 0, -1))
                 if key in reasons), None)


ParameterLookup = Callable[[str, str], Any]
"""(parameter name, JSON pointer) -> value; raises ConditionError for an undeclared name."""

_OPERANDS = ("field", "value", "count")
_LOGICAL = ("allOf", "anyOf", "not")


def compile_condition(node: Any, pointer: str, params: ParameterLookup, *,
                      element_prefix: str | None = None, allow_group: bool = False,
                      paths: PathChecker = check_path) -> Node:
    """Compile one condition (a JSON object) into a Node, raising ConditionError with its pointer."""
    if not isinstance(node, dict):
        raise ConditionError(pointer, "a condition must be an object")
    logical = [k for k in _LOGICAL if k in node]
    if logical:
        if len(node) != 1:
            extra = sorted(k for k in node if k != logical[0])
            raise ConditionError(pointer, f"'{logical[0]}' cannot be combined with {extra} in one condition")
        key = logical[0]
        sub = node[key]
        kw = {"element_prefix": element_prefix, "allow_group": allow_group, "paths": paths}
        if key == "not":
            return Not(compile_condition(sub, f"{pointer}/not", params, **kw))
        if not isinstance(sub, list) or not sub:
            raise ConditionError(f"{pointer}/{key}", f"'{key}' needs a non-empty array of conditions")
        parts = [compile_condition(c, f"{pointer}/{key}/{i}", params, **kw) for i, c in enumerate(sub)]
        return AllOf(parts) if key == "allOf" else AnyOf(parts)
    operands = [k for k in _OPERANDS if k in node]
    operators = [k for k in node if k not in _OPERANDS and k != "where"]
    if len(operands) != 1:
        raise ConditionError(pointer, "a condition needs exactly one of 'field', 'value' or 'count' "
                                      "(or 'allOf', 'anyOf', 'not')")
    unknown = [k for k in operators if k not in OPERATORS]
    if unknown:
        raise ConditionError(f"{pointer}/{unknown[0]}", f"unknown operator {unknown[0]!r}; known: "
                                                        f"{', '.join(OPERATORS)}")
    if len(operators) != 1:
        raise ConditionError(pointer, f"a condition needs exactly one operator, found {len(operators)}")
    if "where" in node:  # next to a count it would be silently ignored
        raise ConditionError(f"{pointer}/where", "'where' belongs inside 'count'")
    operand = _compile_operand(node, operands[0], pointer, params, element_prefix, allow_group, paths)
    op_name = operators[0]
    operator = OPERATORS[op_name]
    raw = _resolve(node[op_name], f"{pointer}/{op_name}", params)
    if op_name == "outboundAllowed" and not (isinstance(operand, FieldOperand) and operand.path.opaque):
        raise ConditionError(f"{pointer}/{op_name}", "'outboundAllowed' applies to the field 'network'")
    if isinstance(operand, FieldOperand) and operand.path.opaque and op_name != "outboundAllowed":
        raise ConditionError(f"{pointer}/{op_name}",
                             f"field {operand.path.text!r} is evaluated only with 'outboundAllowed'")
    try:
        expected = operator.prepare(raw)
    except OperandError as exc:
        raise ConditionError(f"{pointer}/{op_name}", f"{op_name} {exc}") from None
    return Leaf(operand, operator, expected, raw)


def _compile_operand(node: dict[str, Any], kind: str, pointer: str, params: ParameterLookup,
                     element_prefix: str | None, allow_group: bool, paths: PathChecker) -> Operand:
    if kind == "value":
        return ValueOperand(_resolve(node["value"], f"{pointer}/value", params))
    if kind == "field":
        path, relative = _field(node["field"], f"{pointer}/field", element_prefix, allow_group, paths)
        return FieldOperand(path, relative)
    spec = node["count"]
    if not isinstance(spec, dict) or "field" not in spec:
        raise ConditionError(f"{pointer}/count", "'count' needs an object with 'field' (and optional 'where')")
    extra = sorted(set(spec) - {"field", "where"})
    if extra:
        raise ConditionError(f"{pointer}/count/{extra[0]}", f"unknown key {extra[0]!r} in 'count'")
    text = spec["field"]
    if not isinstance(text, str) or not text.endswith("[*]"):
        raise ConditionError(f"{pointer}/count/field", "'count' field must end with [*], e.g. 'extensions[*]'")
    path, relative = _field(text[:-3], f"{pointer}/count/field", element_prefix, allow_group, paths)
    where = None
    if "where" in spec:
        where = compile_condition(spec["where"], f"{pointer}/count/where", params,
                                  element_prefix=text, allow_group=allow_group, paths=paths)
    return CountOperand(path, relative, where)


def _field(text: Any, pointer: str, element_prefix: str | None, allow_group: bool,
           paths: PathChecker) -> tuple[FieldPath, bool]:
    if not isinstance(text, str) or not text:
        raise ConditionError(pointer, "'field' must be a non-empty string")
    if text.startswith("group.") and not allow_group:
        raise ConditionError(pointer, f"{text!r} is only available in policies with 'groupBy'")
    try:
        if element_prefix and text.startswith(element_prefix + "."):
            full = paths(text, allow_star=True)
            depth = len(paths(element_prefix, allow_star=True).segments)
            return FieldPath(text, full.segments[depth:], full.map_leaf, full.opaque), True
        return paths(text), False
    except PathError as exc:
        raise ConditionError(pointer, str(exc)) from None


def _resolve(value: Any, pointer: str, params: ParameterLookup) -> Any:
    """Substitute {"parameter": name} references, at any depth, with the parameter's value."""
    if isinstance(value, dict):
        if set(value) == {"parameter"}:
            return params(value["parameter"], pointer)
        return {k: _resolve(v, f"{pointer}/{k}", params) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, f"{pointer}/{i}", params) for i, v in enumerate(value)]
    return value
