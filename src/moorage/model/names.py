"""Names, labels and free text as they enter Moorage: one rule per kind, with its length limit.

| kind      | what it may be                                                  | at most |
|-----------|-----------------------------------------------------------------|---------|
| grid      | lowercase letters, digits, '-' (``model.grid.GRID_NAME_RE``)     | 63      |
| stack     | lowercase letters, digits, '-', not starting or ending with '-'  | 63      |
| service   | the same as a stack                                             | 63      |
| volume    | letters, digits, '_', '-', two or more (``model.volume``)         | 64      |
| node      | letters, digits, '_', '.', '-' (``model.node.NODE_NAME_RE``)      | 128     |
| label     | a key of at most 128 characters, a value of at most 1,024; at most 64 labels per thing |
| text      | images, env entries, commands, driver options: no NUL or other control characters |

``NameRule.error`` checks the length first, so a 10 MB "name" is refused without being quoted
back; every message quotes what it refuses through ``shown`` (cut short, control characters
escaped), so a message can neither flood a terminal nor forge a log line. The API's wire schemas
(``moorage.master.schemas``, body fields and path parameters alike) and the stack file pipeline
apply these rules before anything is written.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from moorage.model.grid import grid_name_error
from moorage.model.node import NODE_NAME_RE
from moorage.model.stack import NULL_STACK
from moorage.model.volume import volume_name_error

__all__ = [
    "GRID",
    "LABEL_KEY_MAX",
    "LABEL_VALUE_MAX",
    "MAX_LABELS",
    "NAME_RE",
    "NODE",
    "SERVICE",
    "STACK",
    "STACK_REF",
    "VOLUME",
    "NameRule",
    "control_character_error",
    "label_map_errors",
    "label_size_error",
    "service_name_error",
    "shown",
    "stack_name_error",
]

NAME_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
"""What a stack or service name may be (so ``<stack>.<service>-<n>`` is a Docker name and a DNS label)."""

_NAME_RULE = "use 1 to 63 lowercase letters, digits and '-', starting and ending with a letter or digit"

LABEL_KEY_MAX = 128
LABEL_VALUE_MAX = 1024
MAX_LABELS = 64
"""The most labels one node or volume may carry."""

_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_SHOWN_MAX = 80


def shown(value: str) -> str:
    """``value`` fit to quote in a message: at most 80 characters, control characters escaped."""
    cut = value if len(value) <= _SHOWN_MAX else value[:_SHOWN_MAX] + "…"
    return _CONTROL_RE.sub(lambda m: repr(m.group())[1:-1], cut)


def control_character_error(value: str) -> str | None:
    """None when ``value`` has no NUL or other control character, else where the first one is."""
    found = _CONTROL_RE.search(value)
    if found is None:
        return None
    return (
        f"'{shown(value)}' holds the control character U+{ord(found.group()):04X} at position "
        f"{found.start() + 1}; remove it"
    )


def stack_name_error(name: str, *, null_stack: bool = False) -> str | None:
    """None when ``name`` may name a stack (``null`` only where ``null_stack``), else what is wrong."""
    if name == NULL_STACK and not null_stack:
        return f"'{NULL_STACK}' is reserved for services created outside a stack; choose another stack name"
    if NAME_RE.fullmatch(name) is None:
        return f"'{shown(name)}' is not a valid stack name: {_NAME_RULE}"
    return None


def service_name_error(name: str) -> str | None:
    if NAME_RE.fullmatch(name) is None:
        return f"'{shown(name)}' is not a valid service name: {_NAME_RULE}"
    return None


def _node_name_error(name: str) -> str | None:
    if NODE_NAME_RE.fullmatch(name):
        return None
    return (
        f"Node name '{shown(name)}' is not valid: use 1 to 128 letters, digits, '_', '.' or '-', "
        "starting with a letter or digit"
    )


@dataclass(frozen=True, slots=True)
class NameRule:
    """The rule of one kind of name: a length limit, then what the characters may be."""

    kind: str
    max_length: int
    problem: Callable[[str], str | None]

    def error(self, name: str) -> str | None:
        """None when ``name`` is a valid name of this kind, else a sentence saying what is wrong."""
        if len(name) > self.max_length:
            return (
                f"{self.kind.capitalize()} name '{shown(name)}' is {len(name)} characters long; "
                f"use at most {self.max_length}"
            )
        return self.problem(name)


GRID = NameRule("grid", 63, grid_name_error)
STACK = NameRule("stack", 63, stack_name_error)
SERVICE = NameRule("service", 63, service_name_error)
VOLUME = NameRule("volume", 64, volume_name_error)
STACK_REF = NameRule("stack", 63, lambda name: stack_name_error(name, null_stack=True))
"""A stack named to find it (a URL path): ``null``, the stand-alone services' stack, too."""
NODE = NameRule("node", 128, _node_name_error)


def label_size_error(key: str, value: str = "") -> str | None:
    """None when a label's key and value are within the limits and hold no control character."""
    if len(key) > LABEL_KEY_MAX:
        return f"Label key '{shown(key)}' is {len(key)} characters long; use at most {LABEL_KEY_MAX}"
    if len(value) > LABEL_VALUE_MAX:
        return f"Label value of '{shown(key)}' is {len(value)} characters long; use at most {LABEL_VALUE_MAX}"
    return control_character_error(key) or control_character_error(value)


def label_map_errors(labels: Mapping[str, str], field: str = "labels") -> dict[str, str]:
    """What is wrong with the size and characters of a mapping of labels, as {field path: message}.

    (What a key may be beyond that is the rule of the thing labelled.)"""
    if len(labels) > MAX_LABELS:
        return {field: f"{len(labels)} labels given; at most {MAX_LABELS} are allowed"}
    return {
        f"{field}.{shown(key)}": problem
        for key, value in labels.items()
        if (problem := label_size_error(key, value)) is not None
    }
