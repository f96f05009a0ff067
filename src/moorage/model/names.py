"""Names, labels and free text as they enter Moorage: one rule per kind, with its length limit.

| kind      | what it may be                                                  | at most |
|-----------|-----------------------------------------------------------------|---------|
| grid      | lowercase letters, digits, '-' (``model.grid.GRID_NAME_RE``)     | 63      |
| stack     | lowercase letters, digits, '-', not starting or ending with '-'  | 63      |
| service   | the same as a stack                                             | 63      |
| volume    | letters, digits, '_', '-', two or more (``model.volume``)         | 64      |
| node      | letters, digits, '_', '.', '-' (``model.node.NODE_NAME_RE``)      | 128     |
| label     | a key of at most 128 characters, a value of at most 1,024; at most 64 labels per thing |
| text      | images, env entries, driver options: no NUL or other control characters |
| command   | a service's command: text that may also hold tabs and line breaks (a script for ``sh -c``) |
| file text | a stack file as written (kept with each revision): what YAML allows, so tabs and line breaks but no NUL or other control character |

``NameRule.error`` checks the length first, so a 10 MB "name" is refused without being quoted
back; every message quotes what it refuses through ``shown`` (``model/quoting.py``: cut short,
control characters escaped), so a message can neither flood a terminal nor forge a log line. The API's wire schemas
(``moorage.master.schemas``, body fields and path parameters alike) and the stack file pipeline
apply these rules before anything is written.

Each rule also says itself as a JSON Schema ``pattern`` (``NameRule.pattern``, ``TEXT_PATTERN``,
``COMMAND_PATTERN``, ``FILE_TEXT_PATTERN``, ``NODE_LABEL_PATTERN``) for the OpenAPI document, so a client can know the rule without
guessing; the checks here are what decides, and the unit tests hold each pattern to its check.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from moorage.model.grid import GRID_NAME_RE, grid_name_error
from moorage.model.node import NODE_NAME_RE, label_error
from moorage.model.quoting import CONTROL_CHARACTERS, CONTROL_RE, shown
from moorage.model.stack import NULL_STACK
from moorage.model.volume import VOLUME_NAME_RE, volume_name_error

__all__ = [
    "COMMAND_PATTERN",
    "FILE_TEXT_PATTERN",
    "GRID",
    "LABEL_KEY_MAX",
    "LABEL_VALUE_MAX",
    "MAX_LABELS",
    "NAME_RE",
    "NODE",
    "NODE_LABEL_PATTERN",
    "SERVICE",
    "STACK",
    "STACK_REF",
    "TEXT_PATTERN",
    "VOLUME",
    "NameRule",
    "command_error",
    "control_character_error",
    "file_text_error",
    "label_map_errors",
    "label_size_error",
    "node_label_error",
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

_CONTROL_CHARACTERS = CONTROL_CHARACTERS
_CONTROL_RE = CONTROL_RE
TEXT_PATTERN = f"^[^{_CONTROL_CHARACTERS}]*$"
"""Free text as a JSON Schema pattern: no NUL or other control character (``control_character_error``)."""


def control_character_error(value: str) -> str | None:
    """None when ``value`` has no NUL or other control character, else where the first one is."""
    return _control_error(value, _CONTROL_RE, "remove it")


_COMMAND_CONTROL = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029"
"""The control characters a command may not hold: all but tab, line feed and carriage return."""
_COMMAND_CONTROL_RE = re.compile(f"[{_COMMAND_CONTROL}]")
COMMAND_PATTERN = f"^[^{_COMMAND_CONTROL}]*$"
"""A command as a JSON Schema pattern (``command_error``)."""


def command_error(value: str) -> str | None:
    """None when ``value`` may be a service's command: split into arguments as a shell does, it
    may hold tabs and line breaks (a script for ``sh -c``), but no NUL (no argument can) nor any
    other control character."""
    return _control_error(
        value, _COMMAND_CONTROL_RE, "remove it (tabs and line breaks are all a command may hold)"
    )


def _control_error(value: str, characters: re.Pattern[str], advice: str) -> str | None:
    found = characters.search(value)
    if found is None:
        return None
    return (
        f"'{shown(value)}' holds the control character U+{ord(found.group()):04X} at position "
        f"{found.start() + 1}; {advice}"
    )


_NOT_IN_YAML = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ufffe\uffff"
"""The characters YAML does not allow in a file (surrogates aside: no request can hold one)."""
_NOT_IN_YAML_RE = re.compile(f"[{_NOT_IN_YAML}]")
FILE_TEXT_PATTERN = f"^[^{_NOT_IN_YAML}]*$"
"""File text as a JSON Schema pattern (``file_text_error``)."""


def file_text_error(text: str) -> str | None:
    """None when ``text`` may be the text of a stack file (what YAML allows), else where it is not."""
    found = _NOT_IN_YAML_RE.search(text)
    if found is None:
        return None
    at = found.start()
    line, column = text.count("\n", 0, at) + 1, at - text.rfind("\n", 0, at)
    return (
        f"holds the character U+{ord(found.group()):04X} at line {line}, column {column}, which YAML "
        "does not allow in a file; send the stack file as it is written"
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
    """The rule of one kind of name: a length limit, then what the characters may be.

    ``pattern`` (with ``min_length`` and ``max_length``) is the same rule as a JSON Schema
    pattern, for the OpenAPI document; ``error`` is what decides."""

    kind: str
    max_length: int
    problem: Callable[[str], str | None]
    pattern: str
    min_length: int = 1

    def error(self, name: str) -> str | None:
        """None when ``name`` is a valid name of this kind, else a sentence saying what is wrong."""
        if len(name) > self.max_length:
            return (
                f"{self.kind.capitalize()} name '{shown(name)}' is {len(name)} characters long; "
                f"use at most {self.max_length}"
            )
        return self.problem(name)


GRID = NameRule("grid", 63, grid_name_error, GRID_NAME_RE.pattern)
STACK = NameRule("stack", 63, stack_name_error, f"^(?!{NULL_STACK}$){NAME_RE.pattern}$")
SERVICE = NameRule("service", 63, service_name_error, f"^{NAME_RE.pattern}$")
VOLUME = NameRule("volume", 64, volume_name_error, VOLUME_NAME_RE.pattern, min_length=2)
STACK_REF = NameRule(
    "stack", 63, lambda name: stack_name_error(name, null_stack=True), f"^{NAME_RE.pattern}$"
)
"""A stack named to find it (a URL path): ``null``, the stand-alone services' stack, too."""
NODE = NameRule("node", 128, _node_name_error, NODE_NAME_RE.pattern)


def label_size_error(key: str, value: str = "") -> str | None:
    """None when a label's key and value are within the limits and hold no control character."""
    if len(key) > LABEL_KEY_MAX:
        return f"Label key '{shown(key)}' is {len(key)} characters long; use at most {LABEL_KEY_MAX}"
    if len(value) > LABEL_VALUE_MAX:
        return f"Label value of '{shown(key)}' is {len(value)} characters long; use at most {LABEL_VALUE_MAX}"
    return control_character_error(key) or control_character_error(value)


def node_label_error(label: str) -> str | None:
    """None when ``label`` (``key=value``) may label a node, else what is wrong."""
    key, _, value = label.partition("=")
    return label_size_error(key, value) or label_error(label)


_SPACES = r"\x20\x85\xa0\u1680\u2000-\u200a\u202f\u205f\u3000"
"""The white space of Python's ``\\s`` that is no control character (JSON Schema's ``\\s`` differs)."""
NODE_LABEL_PATTERN = (
    f"^[A-Za-z0-9][A-Za-z0-9_.\\-/]{{0,{LABEL_KEY_MAX - 1}}}"
    f"=[^{_CONTROL_CHARACTERS}{_SPACES}]{{0,{LABEL_VALUE_MAX}}}$"
)
"""A node label (``node_label_error``) as a JSON Schema pattern: ``model.node.LABEL_RE`` within the label limits."""


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
