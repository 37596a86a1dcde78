"""Compile a condition from JSON with parameters, the way the loader does."""

from typing import Any

from backup_preflight.policy.conditions import ConditionError, Context, Node, compile_condition


def compile_json(node: Any, params: dict[str, Any] | None = None, **kw: Any) -> Node:
    values = params or {}

    def lookup(name: str, pointer: str) -> Any:
        if name not in values:
            raise ConditionError(pointer, f"unknown parameter {name!r}")
        return values[name]

    return compile_condition(node, "", lookup, **kw)


def ev(node: Any, facts: dict[str, Any], params: dict[str, Any] | None = None) -> bool | None:
    return compile_json(node, params).eval(facts, Context())
