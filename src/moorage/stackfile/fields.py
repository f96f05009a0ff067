"""Reading one mapping of the stack file with type checks, for ``validate``.

``Fields`` wraps a mapping: it reports unknown keys (with a "did you mean" when one is close) and
keys that are not strings as soon as it is made, then hands out values of the type asked for,
reporting ``must be <expected>, not <found>`` at the value's path otherwise.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping, Sequence

from moorage.model.quoting import shown
from moorage.stackfile.document import At
from moorage.stackfile.issues import Issues
from moorage.stackfile.paths import item_path, key_path

__all__ = ["Fields", "boolean", "describe_value", "string_keyed", "unknown_key"]


class Fields:
    """The entries of one mapping in the file, read with type checks.

    Unknown keys and keys that are not strings are reported when it is made.
    """

    def __init__(
        self, mapping: dict[object, object], path: str, allowed: Sequence[str], issues: Issues
    ) -> None:
        self._path = path
        self._issues = issues
        self._values: dict[str, object] = {}
        self._suggested: set[str] = set()  # allowed keys offered as "did you mean"
        for key, value in string_keyed(mapping, path, issues).items():
            if key in allowed:
                self._values[key] = value
                continue
            suggestion = _closest(key, allowed)
            if suggestion is not None:
                self._suggested.add(suggestion)
            issues.add(key_path(path, key), unknown_key(key, allowed, suggestion))

    def path(self, key: str) -> str:
        return key_path(self._path, key)

    def value(self, key: str) -> object:
        """The value of ``key``; None when it is absent or empty."""
        return self._values.get(key)

    def string_at(self, key: str, *, missing: str | None = None) -> At[str] | None:
        value = self._present(key, missing)
        if value is None:
            return None
        if not isinstance(value, str):
            self._wrong(key, "a string", value)
            return None
        if missing is not None and not value.strip():
            self._issues.add(self.path(key), missing)
            return None
        return At(self.path(key), value)

    def string(self, key: str, *, missing: str | None = None) -> str | None:
        found = self.string_at(key, missing=missing)
        return None if found is None else found.value

    def whole_number(self, key: str, *, default: int, maximum: int) -> int:
        value = self._values.get(key)
        if value is None:
            return default
        number = _whole_number(value)
        if number is None or not 0 <= number <= maximum:
            self._wrong(key, f"a whole number from 0 to {maximum}", value)
            return default
        return number

    def positive_number(self, key: str) -> float | None:
        value = self._values.get(key)
        if value is None:
            return None
        number = _number(value)
        if number is None or not number > 0:
            self._wrong(key, "a number greater than 0, such as 0.5 or 2", value)
            return None
        return number

    def string_or_whole_number(self, key: str, *, expected: str) -> At[str | int] | None:
        value = self._values.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, str | int):
            self._wrong(key, expected, value)
            return None
        return At(self.path(key), value)

    def strings(self, key: str, *, expected: str, item: str) -> tuple[At[str], ...]:
        """A list of strings (numbers are taken as their text) with each item's path."""
        value = self._values.get(key)
        if value is None:
            return ()
        if not isinstance(value, list):
            self._wrong(key, expected, value)
            return ()
        found = []
        for index, entry in enumerate(value):
            entry_at = item_path(self.path(key), index)
            if isinstance(entry, int) and not isinstance(entry, bool):
                entry = str(entry)
            if isinstance(entry, str):
                found.append(At(entry_at, entry))
            else:
                self._issues.add(entry_at, f"must be {item}, not {describe_value(entry)}")
        return tuple(found)

    def mapping_value(
        self, key: str, *, expected: str, missing: str | None = None
    ) -> dict[object, object] | None:
        value = self._present(key, missing)
        if value is None:
            return None
        if not isinstance(value, dict):
            self._wrong(key, expected, value)
            return None
        return value

    def mapping(self, key: str, allowed: Sequence[str], *, expected: str) -> Fields | None:
        value = self.mapping_value(key, expected=expected)
        return None if value is None else Fields(value, self.path(key), allowed, self._issues)

    def _present(self, key: str, missing: str | None) -> object:
        value = self._values.get(key)
        if value is None and missing is not None and key not in self._suggested:
            self._issues.add(self.path(key), missing)
        return value

    def _wrong(self, key: str, expected: str, value: object) -> None:
        self._issues.add(self.path(key), f"must be {expected}, not {describe_value(value)}")


def unknown_key(key: str, allowed: Sequence[str], suggestion: str | None) -> str:
    hint = f" (did you mean '{suggestion}'?)" if suggestion else ""
    return f"unknown key '{shown(key)}'{hint}; the keys allowed here are: {', '.join(sorted(allowed))}"


def _closest(key: str, allowed: Sequence[str]) -> str | None:
    close = difflib.get_close_matches(key, allowed, n=1)
    return close[0] if close else None


def string_keyed(mapping: Mapping[object, object], path: str, issues: Issues) -> dict[str, object]:
    """The entries whose key is a string; any other key is reported."""
    entries: dict[str, object] = {}
    for key, value in mapping.items():
        if isinstance(key, str):
            entries[key] = value
        else:
            issues.add(
                key_path(path, _yaml_scalar(key)),
                f"this key is read as {describe_value(key)}, not a string; put the key in quotes",
            )
    return entries


def describe_value(value: object) -> str:
    """How a value from the file is named in messages: "'abc'", "a list", "the boolean true"..."""
    if value is None:
        return "an empty value"
    if isinstance(value, bool):
        return f"the boolean {_yaml_scalar(value)}"
    if isinstance(value, int | float):
        return f"the number {_yaml_scalar(value)}"
    if isinstance(value, str):
        return f"'{shown(value)}'" if len(value) <= 60 else f"'{shown(value[:57])}...'"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__} ({value})"


def _yaml_scalar(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


_WHOLE_NUMBER_RE = re.compile(r"\s*[0-9]{1,9}\s*")
_DECIMAL_RE = re.compile(r"\s*[0-9]{1,9}(\.[0-9]{1,9})?\s*")


def _whole_number(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _WHOLE_NUMBER_RE.fullmatch(value):
        return int(value)
    return None


def _number(value: object) -> float | None:
    if isinstance(value, str) and _DECIMAL_RE.fullmatch(value):
        return float(value)
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except OverflowError:  # an integer too large for a float
        return None
    return number if math.isfinite(number) else None


def boolean(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None
