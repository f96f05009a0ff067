"""Properties: any text gives a stack or a StackFileError; any valid stack survives the dict round trip."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moorage.model.stack import (
    AffinityRule,
    DeployStrategy,
    Mount,
    MountKind,
    PortMapping,
    ServiceSpec,
    StackSpec,
)
from moorage.stackfile import StackFileError, load_stack, stack_from_dict, stack_to_dict

GRID = "testgrid"


# --- hostile input: always a StackFileError, never anything else ------------------------------

HOSTILE = [
    pytest.param(
        "a: &a [*a]",
        "a YAML alias refers to a value that contains it; remove the recursion",
        id="recursive-alias",
    ),
    pytest.param(
        "a: &a ['x','x','x','x','x','x','x','x','x','x']\n"
        + "".join(
            f"{c}: &{c} [*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p}]\n"
            for p, c in zip("abcdefg", "bcdefgh", strict=True)
        ),
        "the file expands to more than 100000 values through YAML aliases",
        id="alias-bomb",
    ),
    pytest.param("[" * 5000, "the file is nested too deeply to be a stack file", id="deep-nesting"),
    pytest.param("--- a\n--- b\n", None, id="two-documents"),
    pytest.param(
        "stack: re\x07dis",
        "not valid YAML at line 1, column 10: the character U+0007 is not allowed; "
        "remove it or write it as an escape inside double quotes",
        id="control-character",
    ),
    pytest.param("a: !!python/object:os.system x", None, id="python-tag"),
    pytest.param(
        "stack: redis\nservices: {app: {image: busybox, instances: " + "9" * 5000 + "}}",
        None,
        id="huge-integer",
    ),
]


@pytest.mark.parametrize(("text", "message"), HOSTILE)
def test_hostile_yaml_is_refused_with_a_stack_file_error(text: str, message: str | None) -> None:
    with pytest.raises(StackFileError) as caught:
        load_stack(text, env={}, grid=GRID, source="evil.yml")
    if message is not None:
        assert caught.value.errors == {"evil.yml": message}


@settings(max_examples=300, deadline=None)
@given(
    st.text(
        alphabet=st.sampled_from(list("abc:-/$.{}[]#&*!|>'\"\n =0123456789")) | st.characters(),
        max_size=120,
    )
)
def test_any_text_loads_or_raises_a_stack_file_error(text: str) -> None:
    with contextlib.suppress(StackFileError):
        load_stack(text, env={}, grid=GRID)


_names = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
_paths = (
    st.lists(st.from_regex(r"[A-Za-z0-9_.-]{1,8}", fullmatch=True), min_size=1, max_size=3)
    .map(lambda parts: "/" + "/".join(parts))
    .filter(lambda p: p.strip("/.") != "")
)


_env_characters = st.characters(exclude_categories=("Cc", "Cs", "Zl", "Zp"))
_command_characters = _env_characters | st.sampled_from("\t\n\r")  # a command may hold these too


@st.composite
def _service_specs(draw: st.DrawFn, name: str) -> ServiceSpec:
    return ServiceSpec(
        name=name,
        image=draw(st.from_regex(r"[a-z0-9./:-]{1,20}", fullmatch=True)),
        command=draw(st.none() | st.text(_command_characters, max_size=20)),
        environment=tuple(
            draw(
                st.dictionaries(
                    st.from_regex(r"[A-Z_]{1,6}", fullmatch=True),
                    st.text(_env_characters, max_size=8),  # no control characters (they are refused)
                    max_size=3,
                )
            ).items()
        ),
        instances=draw(st.integers(0, 1000)),
        mounts=tuple(
            Mount(MountKind.ANONYMOUS, target)
            for target in draw(st.lists(_paths, max_size=3, unique_by=lambda p: p))
        ),
        ports=tuple(
            PortMapping(host, container, protocol)
            for host, container, protocol in draw(
                st.lists(
                    st.tuples(st.integers(1, 65535), st.integers(1, 65535), st.sampled_from(["tcp", "udp"])),
                    max_size=3,
                    unique_by=lambda t: (t[0], t[2]),
                )
            )
        ),
        affinity=tuple(
            draw(st.lists(st.builds(AffinityRule, st.just("node"), st.booleans(), _names), max_size=2))
        ),
        strategy=draw(st.sampled_from(list(DeployStrategy))),
        memory=draw(st.none() | st.integers(6 * 1024**2, 2**40)),
        cpus=draw(st.none() | st.floats(min_value=0.01, max_value=64, allow_nan=False)),
    )


@st.composite
def _stack_specs(draw: st.DrawFn) -> StackSpec:
    names = draw(st.lists(_names, min_size=1, max_size=3, unique=True))
    return StackSpec(
        name=draw(_names.filter(lambda n: n != "null")),
        services=tuple(draw(_service_specs(name)) for name in names),
        version=draw(st.none() | st.text(max_size=8)),
        description=draw(st.none() | st.text(max_size=20)),
    )


@settings(max_examples=100, deadline=None)
@given(_stack_specs())
def test_any_valid_stack_round_trips_through_json(spec: StackSpec) -> None:
    assert stack_from_dict(json.loads(json.dumps(stack_to_dict(spec)))) == spec
