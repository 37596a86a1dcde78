"""Condition operators: one small pure function per operator, and a table from names to them.

Each operator has `prepare` (checks and compiles its operand once, at load time: a bad regex
or a wrong operand type is a load error) and `test` (compares an actual fact with the prepared
operand, giving True, False or None). None means the comparison cannot be decided, for
example a version that is not dotted integers: it becomes `unknown`, never a silent pass or
fail. Missing facts never reach `test`; conditions.py turns them into unknown first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from operator import eq, ge, gt, le, lt
from typing import Any

import re2

from backup_preflight.policy.versions import compare_versions, parse_version

Tri = bool | None


class OperandError(ValueError):
    """An operand that does not fit its operator; raised at load time."""


@dataclass(frozen=True, slots=True)
class Operator:
    name: str
    prepare: Callable[[Any], Any]
    test: Callable[[Any, Any], Tri]


def _fold(value: Any) -> Any:
    """Strings compare and order case-insensitively, as in Azure Policy."""
    return value.casefold() if isinstance(value, str) else value


def _same(a: Any, b: Any) -> bool:
    """Equality as Azure Policy has it: strings ignore case; booleans equal only booleans."""
    if type(a) is str:
        return type(b) is str and (a == b or a.casefold() == b.casefold())
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b


def _any(value: Any) -> Any:
    return value


def _list(value: Any) -> tuple[Any, ...]:
    if not isinstance(value, list):
        raise OperandError(f"expects an array, found {type(value).__name__}")
    return tuple(value)


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise OperandError(f"expects a string, found {type(value).__name__}")
    return value


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise OperandError(f"expects true or false, found {type(value).__name__}")
    return value


@dataclass(frozen=True, slots=True)
class Glob:
    """Azure Policy's `like` pattern: `*` is the only wildcard (`?`, `[` are plain characters); case ignored.

    Matched without a regular expression: `re` backtracks on `*a*a*a*b` against a long value (a 200-character
    name took 90 s), and Azure caps no message's length. Each piece between the stars is found leftmost after
    the one before it, which is exact when `*` is the only wildcard: linear in the value per piece."""

    parts: tuple[str, ...]  # casefolded; one more than the stars

    def matches(self, text: str) -> bool:
        first, last = self.parts[0], self.parts[-1]
        if len(self.parts) == 1:
            return text == first
        end = len(text) - len(last)
        if end < len(first) or not text.startswith(first) or not text.endswith(last):
            return False
        at = len(first)
        for part in self.parts[1:-1]:
            found = text.find(part, at, end)
            if found < 0:
                return False
            at = found + len(part)
        return True


def _like(value: Any) -> Glob:
    return Glob(tuple(_string(value).casefold().split("*")))


def _regex(value: Any) -> Any:
    """RE2, not `re`: matching takes linear time, so no tag value can stall a scan with backtracking.
    Patterns RE2 cannot express (backreferences, lookaround) are refused at load time."""
    options = re2.Options()
    options.log_errors = False  # the reason goes into the load error, not onto stderr
    try:
        return re2.compile(_string(value), options=options)
    except re2.error as exc:
        reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else exc
        raise OperandError(f"invalid regular expression {value!r} for RE2 (linear-time matching: no "
                           f"backreferences or lookaround): {reason}") from None


def _orderable(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise OperandError(f"expects a number or a string, found {type(value).__name__}")
    return value


def _version(value: Any) -> str:
    if parse_version(value) is None:
        raise OperandError(f"expects a dotted-integer version like '2.2.53.1', found {value!r}")
    return value


def equals(actual: Any, expected: Any) -> Tri:
    return _same(actual, expected)


def not_equals(actual: Any, expected: Any) -> Tri:
    return not _same(actual, expected)


def in_(actual: Any, expected: tuple[Any, ...]) -> Tri:
    return any(_same(actual, e) for e in expected)


def not_in(actual: Any, expected: tuple[Any, ...]) -> Tri:
    return not in_(actual, expected)


def like(actual: Any, pattern: Glob) -> Tri:
    if not isinstance(actual, str):
        return None
    return pattern.matches(actual.casefold())


def not_like(actual: Any, pattern: Glob) -> Tri:
    result = like(actual, pattern)
    return None if result is None else not result


def match(actual: Any, pattern: Any) -> Tri:
    if not isinstance(actual, str):
        return None
    return pattern.search(actual) is not None


def not_match(actual: Any, pattern: Any) -> Tri:
    result = match(actual, pattern)
    return None if result is None else not result


def contains(actual: Any, expected: Any) -> Tri:
    if isinstance(actual, str) and isinstance(expected, str):
        return expected.casefold() in actual.casefold()
    if isinstance(actual, list):
        return any(_same(item, expected) for item in actual)
    return None


def not_contains(actual: Any, expected: Any) -> Tri:
    result = contains(actual, expected)
    return None if result is None else not result


def _ordered(check: Callable[[Any, Any], bool], actual: Any, expected: Any) -> Tri:
    """`check` (gt, ge, lt, le) on two numbers, or on two strings ignoring case as in Azure Policy."""
    numeric = isinstance(expected, int | float)
    if isinstance(actual, bool) or not (
        isinstance(actual, int | float) if numeric else isinstance(actual, str)
    ):
        return None  # a number against a string is undecidable, not false
    return check(_fold(actual), _fold(expected))


def _versioned(check: Callable[[Any, Any], bool], actual: Any, expected: Any) -> Tri:
    order = compare_versions(actual, expected)
    return None if order is None else check(order, 0)


def outbound_allowed(actual: Any, expected: Any) -> Tri:
    return actual.outbound(expected).value


def _endpoints(value: Any) -> Any:
    # Imported here: the network model belongs to the estate stage, the operand shape to us.
    from backup_preflight.estate.network_facts import parse_outbound_operand

    try:
        return parse_outbound_operand(value)
    except ValueError as exc:
        raise OperandError(str(exc)) from None


#: Every operator a condition may use. `exists` is here for the schema; conditions.py evaluates it.
#: (Module-level functions bound with `partial`, not closures, so a mutation test reaches them.)
OPERATORS: dict[str, Operator] = {op.name: op for op in (
    Operator("equals", _any, equals),
    Operator("notEquals", _any, not_equals),
    Operator("in", _list, in_),
    Operator("notIn", _list, not_in),
    Operator("like", _like, like),
    Operator("notLike", _like, not_like),
    Operator("match", _regex, match),
    Operator("notMatch", _regex, not_match),
    Operator("contains", _any, contains),
    Operator("notContains", _any, not_contains),
    Operator("exists", _boolean, equals),
    Operator("greater", _orderable, partial(_ordered, gt)),
    Operator("greaterOrEquals", _orderable, partial(_ordered, ge)),
    Operator("less", _orderable, partial(_ordered, lt)),
    Operator("lessOrEquals", _orderable, partial(_ordered, le)),
    Operator("versionEquals", _version, partial(_versioned, eq)),
    Operator("versionGreater", _version, partial(_versioned, gt)),
    Operator("versionGreaterOrEquals", _version, partial(_versioned, ge)),
    Operator("versionLess", _version, partial(_versioned, lt)),
    Operator("versionLessOrEquals", _version, partial(_versioned, le)),
    Operator("outboundAllowed", _endpoints, outbound_allowed),
)}
