"""The JSON Schema patterns of ``model/names.py`` say exactly what its checks accept.

The OpenAPI document states each rule as ``pattern`` (with ``minLength``/``maxLength``); a client,
or schemathesis, takes a value the pattern allows as valid. So for every kind of name, and for free
text and node labels, a value matches the pattern (as JSON Schema reads it: ``$`` is the end of the
text, not a newline before it) exactly when the check finds nothing wrong with it.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable

import pytest
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st

from moorage.master.token_schemas import AdminTokenCreate
from moorage.model import names
from moorage.model.names import NameRule
from moorage.store.tokens import token_name_error


def _json_schema_match(pattern: str, value: str, min_length: int = 0, max_length: int = sys.maxsize) -> bool:
    """``value`` against ``pattern`` as JSON Schema (ECMA-262) reads it: ``$`` only at the end."""
    ecma = pattern.replace("$", r"\Z")  # the patterns here use '$' only as that anchor
    return min_length <= len(value) <= max_length and re.search(ecma, value) is not None


RULES = [
    pytest.param(names.GRID, id="grid"),
    pytest.param(names.STACK, id="stack"),
    pytest.param(names.STACK_REF, id="stack-in-a-path"),
    pytest.param(names.SERVICE, id="service"),
    pytest.param(names.VOLUME, id="volume"),
    pytest.param(names.NODE, id="node"),
]

_NAMEISH = st.text(alphabet="az09AZ-_./=\n \x00é", max_size=140)
"""Text made of the characters the rules are about: near misses of valid names."""


def _values(pattern: str) -> st.SearchStrategy[str]:
    return st.one_of(st.from_regex(pattern, fullmatch=True), _NAMEISH, st.text(max_size=200))


@pytest.mark.parametrize("rule", RULES)
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_a_name_matches_its_documented_pattern_exactly_when_its_rule_takes_it(
    rule: NameRule, data: st.DataObject
) -> None:
    value = data.draw(_values(rule.pattern))
    documented = _json_schema_match(rule.pattern, value, rule.min_length, rule.max_length)
    assert documented == (rule.error(value) is None), (value, rule.error(value))


EDGES = ["", "a", "ab", "null", "null-1", "a\n", "-a", "a-", "a_b", "a.b", "A"]


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("value", [*EDGES, *("a" * n for n in (63, 64, 65, 128, 129))])
def test_the_edges_of_each_name_rule_are_documented(rule: NameRule, value: str) -> None:
    documented = _json_schema_match(rule.pattern, value, rule.min_length, rule.max_length)
    assert documented == (rule.error(value) is None), (value, rule.error(value))


def _every_character() -> list[str]:
    return [chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF]


@pytest.mark.parametrize(
    ("pattern", "check", "around"),
    [
        pytest.param(names.TEXT_PATTERN, names.control_character_error, "a{}b", id="text"),
        pytest.param(names.COMMAND_PATTERN, names.command_error, "a{}b", id="command"),
        pytest.param(names.FILE_TEXT_PATTERN, names.file_text_error, "a{}b", id="file-text"),
        pytest.param(names.NODE_LABEL_PATTERN, names.node_label_error, "zone=a{}b", id="node-label-value"),
        pytest.param(names.NODE_LABEL_PATTERN, names.node_label_error, "z{}=a", id="node-label-key"),
    ],
)
def test_every_character_is_documented_as_its_check_takes_it(
    pattern: str, check: Callable[[str], str | None], around: str
) -> None:
    wrong = [
        f"U+{ord(c):04X}"
        for c in _every_character()
        if _json_schema_match(pattern, value := around.format(c)) != (check(value) is None)
    ]
    assert wrong == []


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.from_regex(names.NODE_LABEL_PATTERN, fullmatch=True), _NAMEISH, st.text(max_size=40)))
@example("k" * names.LABEL_KEY_MAX + "=v")
@example("k" * (names.LABEL_KEY_MAX + 1) + "=v")
@example("k=" + "v" * names.LABEL_VALUE_MAX)
@example("k=" + "v" * (names.LABEL_VALUE_MAX + 1))
@example("k=v\n")
@example("=v")
@example("k")
def test_a_node_label_matches_its_pattern_exactly_when_it_is_taken(label: str) -> None:
    assert _json_schema_match(names.NODE_LABEL_PATTERN, label) == (names.node_label_error(label) is None)


def test_file_text_is_what_yaml_reads() -> None:
    """A stack file's text is refused by the master exactly when PyYAML's reader refuses it."""
    not_yaml = yaml.reader.Reader.NON_PRINTABLE
    wrong = [
        f"U+{ord(c):04X}"
        for c in _every_character()
        if (not_yaml.search(c) is None) != (names.file_text_error(c) is None)
    ]
    assert wrong == []


def test_the_token_name_pattern_is_the_token_name_rule() -> None:
    schema = AdminTokenCreate.model_json_schema()["properties"]["name"]
    for value in ["ci", "a", "a" * 64, "a" * 65, "", "Ci", "-ci", "ci\n", "c.i_-"]:
        documented = _json_schema_match(schema["pattern"], value, schema["minLength"], schema["maxLength"])
        assert documented == (token_name_error(value) is None), value
