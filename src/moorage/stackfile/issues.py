"""What goes wrong in a stack file: one ``StackFileIssue`` per path, all raised together.

    MoorageError
     └── InvalidInput            .errors maps path -> message (the API's 422 body)
          └── StackFileError     .issues keeps every StackFileIssue, in file order

Every step of the pipeline adds to one ``Issues`` collector and goes on, so a user sees every
problem in one run. The first issue found at a path wins: a value that already failed one step
(say an unresolved ``${TAG}``) is not reported again by the next. Issues are raised in the order
of the file (problems with the file as a whole first), not in the order the steps found them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from moorage.errors import InvalidInput
from moorage.stackfile.paths import ROOT, parent_path

__all__ = ["Issues", "StackFileError", "StackFileIssue"]


@dataclass(frozen=True, slots=True)
class StackFileIssue:
    """One problem: where it is (``services.redis.image``) and a sentence saying what and how to fix."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class StackFileError(InvalidInput):
    """A stack file (or stored stack) that Moorage cannot use; ``issues`` lists every problem."""

    def __init__(self, errors: Sequence[StackFileIssue], *, source: str = "<stack file>") -> None:
        super().__init__({issue.path: issue.message for issue in errors})
        self.issues = tuple(errors)
        self.source = source
        count = "1 problem" if len(self.issues) == 1 else f"{len(self.issues)} problems"
        lines = [f"{source} is not a valid stack file ({count}):"]
        lines += [f"  {issue}" for issue in self.issues]
        self.message = "\n".join(lines)
        self.args = (self.message,)


class Issues:
    """Collects the issues of one run of the pipeline."""

    def __init__(self) -> None:
        self._by_path: dict[str, StackFileIssue] = {}
        self._positions: dict[str, int] = {}

    def note_position(self, path: str) -> None:
        """Record that ``path`` comes next in the file (the load step calls this for every value)."""
        self._positions.setdefault(path, len(self._positions))

    def add(self, path: str, message: str) -> None:
        """Record a problem at ``path``, unless an earlier step already reported one there."""
        self._by_path.setdefault(path, StackFileIssue(path, message))

    def raise_if_any(self, source: str) -> None:
        if self._by_path:
            raise StackFileError(self._in_file_order(source), source=source)

    def _in_file_order(self, source: str) -> list[StackFileIssue]:
        def position(issue: StackFileIssue) -> int:
            path = ROOT if issue.path == source else issue.path
            while path and path not in self._positions:
                path = parent_path(path)
            return self._positions.get(path, -1)

        return sorted(self._by_path.values(), key=position)
