"""Input errors: every problem the user can fix names the file, the place in it and what is wrong.

They map to exit code 2 in the CLI, which prints one line per problem and never a traceback.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

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
    """Raised with every problem found in a set of inputs, so the user sees them all at once."""

    def __init__(self, problems: list[Problem]) -> None:
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
