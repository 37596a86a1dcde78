"""Input errors: every problem the user can fix names the file, the place in it and what is wrong.

They map to exit code 2 in the CLI, which prints one line per problem and never a traceback.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

In = TypeVar("In")
Out = TypeVar("Out")


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with one input: `file`, a JSON pointer or line (`place`) and the reason."""

    file: str
    place: str
    reason: str

    def __str__(self) -> str:
        where = f"{self.file}: {self.place}" if self.place else self.file
        return f"{where}: {self.reason}"


class InputError(Exception):
    """Raised with every problem found in a set of inputs, so the user sees them all at once, each once (a
    `--param` value refused by every policy that declares the parameter is one problem, not one per policy)."""

    def __init__(self, problems: list[Problem]) -> None:
        problems = list(dict.fromkeys(problems))
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems

    @classmethod
    def one(cls, file: str, place: str, reason: str) -> InputError:
        return cls([Problem(file, place, reason)])


def gather(items: Iterable[In], load: Callable[[In], Out]) -> list[Out]:
    """Load every item; if any fails, raise one InputError with the problems of all of them."""
    problems: list[Problem] = []
    loaded: list[Out] = []
    for item in items:
        try:
            loaded.append(load(item))
        except InputError as exc:
            problems.extend(exc.problems)
    if problems:
        raise InputError(problems)
    return loaded


def schema_problems(validator: Any, doc: Any, label: str) -> list[Problem]:
    """Every JSON Schema error in `doc` as a Problem with its JSON pointer, in document order."""
    errors = sorted(validator.iter_errors(doc), key=lambda e: [(isinstance(p, str), p) for p in e.absolute_path])
    return [Problem(label, pointer(e.absolute_path), _reason(e)) for e in errors]


def pointer(parts: Any) -> str:
    """The JSON pointer (RFC 6901) of a path of keys and indexes; "/" for the whole document."""
    return "/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in parts) if parts else "/"


def _reason(error: Any) -> str:
    """jsonschema's message, in the words of someone editing the file."""
    if error.validator == "additionalProperties":
        return error.message.replace("Additional properties are not allowed", "unknown key")
    if error.validator == "enum":
        return f"{json.dumps(error.instance)} is not one of {', '.join(map(str, error.validator_value))}"
    if error.validator == "anyOf" and "description" in error.schema:
        return f"incomplete entry: {error.schema['description']}"
    return error.message


class Interrupted(BaseException):
    """SIGTERM or SIGINT: unwinds the run (cleaning up its staging folder); the CLI exits 128 + signal."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
