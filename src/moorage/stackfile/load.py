"""Step 1, load: YAML text -> plain data (dicts, lists, strings, booleans, None).

PyYAML's safe loader, with changes that matter for stack files:

- Scalars stay text, except ``true``/``false`` and ``null``/``~``/empty. YAML 1.1 would turn
  ``VERSION: 1.10`` into ``"1.1"``, ``MODE: 0755`` into ``"493"``, ``DEBUG: yes`` into ``"true"``
  and the port ``- 80:22`` into the base-60 number 4822; here every value reads as written, and
  the fields that need numbers (``instances``, ``cpus``, ports, ``mem_limit``) parse the text,
  just as they must for values that come from ``${VARIABLES}``.
- A key given twice in one mapping is reported (plain YAML silently keeps the last one).
- Recursive aliases and alias "bombs" are refused instead of looping or exhausting memory.

A file that is not YAML at all raises ``StackFileError`` at once, with line and column; one that
is not UTF-8 text (``decode_stack_file``) with the offset of the first byte that is not.
"""

from __future__ import annotations

import re

import yaml

from moorage.stackfile.issues import Issues, StackFileError, StackFileIssue
from moorage.stackfile.paths import ROOT, item_path, key_path

__all__ = ["MAX_VALUES", "decode_stack_file", "load_yaml"]

MAX_VALUES = 100_000
"""The most values a stack file may hold once its aliases are expanded."""

_MERGE_KEY = "<<"


class _StackFileLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that resolves only booleans, nulls and merge keys; the rest is text."""


_StackFileLoader.yaml_implicit_resolvers = {}
_StackFileLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_StackFileLoader.add_implicit_resolver(
    "tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]
)
_StackFileLoader.add_implicit_resolver("tag:yaml.org,2002:merge", re.compile(r"^(?:<<)$"), ["<"])


class _TooBig(Exception):
    pass


class _Recursive(Exception):
    pass


def decode_stack_file(data: bytes, *, source: str) -> str:
    """The text of a stack file read as bytes; raises ``StackFileError`` if it is not UTF-8."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        offset = error.start
        line = data.count(b"\n", 0, offset) + 1
        column = offset - (data.rfind(b"\n", 0, offset) + 1) + 1
        raise _fatal(
            source,
            f"not UTF-8 text: the byte 0x{data[offset]:02X} at offset {offset} (line {line}, byte "
            f"{column} of the line) {error.reason}; save the file as UTF-8",
        ) from None


def load_yaml(text: str, *, source: str, issues: Issues) -> object:
    """The data in ``text``; duplicate keys go to ``issues``; raises if ``text`` is not YAML."""
    try:
        loader = _StackFileLoader(text)
    except yaml.reader.ReaderError as error:
        raise _fatal(source, _describe_reader_error(text, error)) from error
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _NodeCheck(issues).walk(node, ROOT)
        return loader.construct_document(node)
    except yaml.reader.ReaderError as error:
        raise _fatal(source, _describe_reader_error(text, error)) from error
    except yaml.MarkedYAMLError as error:
        raise _fatal(source, _describe_yaml_error(error)) from error
    except yaml.YAMLError as error:
        raise _fatal(source, f"not valid YAML: {error}") from error
    except _Recursive as error:
        raise _fatal(
            source, "a YAML alias refers to a value that contains it; remove the recursion"
        ) from error
    except _TooBig as error:
        raise _fatal(
            source, f"the file expands to more than {MAX_VALUES} values through YAML aliases"
        ) from error
    except RecursionError as error:
        raise _fatal(source, "the file is nested too deeply to be a stack file") from error
    except ValueError as error:  # e.g. a `!!int` with more digits than Python converts
        raise _fatal(source, f"a value in the file cannot be read: {error}") from error
    finally:
        loader.dispose()


def _fatal(source: str, message: str) -> StackFileError:
    return StackFileError([StackFileIssue(source, message)], source=source)


def _describe_reader_error(text: str, error: yaml.reader.ReaderError) -> str:
    """A character YAML does not allow, e.g. a control character pasted into the file."""
    line = text.count("\n", 0, error.position) + 1
    column = error.position - text.rfind("\n", 0, error.position)
    code = error.character if isinstance(error.character, int) else ord(error.character)
    return (
        f"not valid YAML at line {line}, column {column}: the character U+{code:04X} is not allowed; "
        "remove it or write it as an escape inside double quotes"
    )


def _describe_yaml_error(error: yaml.MarkedYAMLError) -> str:
    problem = error.problem or str(error)
    message = "not valid YAML"
    if error.problem_mark is not None:
        mark = error.problem_mark
        message += f" at line {mark.line + 1}, column {mark.column + 1}"
    message += f": {problem}"
    if error.context:
        message += f" ({error.context}"
        if error.context_mark is not None:
            mark = error.context_mark
            message += f" at line {mark.line + 1}, column {mark.column + 1}"
        message += ")"
    return message + "; check the indentation and quoting there"


class _NodeCheck:
    """Walks the YAML node tree (aliases expanded) before anything is built from it."""

    def __init__(self, issues: Issues) -> None:
        self.issues = issues
        self.count = 0
        self.open: set[int] = set()  # the collections on the way from the root to here

    def walk(self, node: yaml.Node, path: str) -> None:
        self.issues.note_position(path)
        self.count += 1
        if self.count > MAX_VALUES:
            raise _TooBig
        if id(node) in self.open:
            raise _Recursive
        if isinstance(node, yaml.MappingNode):
            self.open.add(id(node))
            self._mapping(node, path)
            self.open.discard(id(node))
        elif isinstance(node, yaml.SequenceNode):
            self.open.add(id(node))
            for index, item in enumerate(node.value):
                self.walk(item, item_path(path, index))
            self.open.discard(id(node))

    def _mapping(self, node: yaml.MappingNode, path: str) -> None:
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            child = path if key is None else key_path(path, key)
            if key is not None and key != _MERGE_KEY:
                line = key_node.start_mark.line + 1
                if key in first_line:
                    self.issues.add(
                        child,
                        f"is given twice in the same mapping (lines {first_line[key]} and {line}); "
                        "YAML would keep only the last one, so remove one of them",
                    )
                first_line.setdefault(key, line)
            self.walk(key_node, child)
            self.walk(value_node, child)
