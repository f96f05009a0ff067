"""Variables in stack files: ${NAME}, ${NAME:-default}, $NAME, $$, STACK and GRID."""

from __future__ import annotations

import textwrap

import pytest

from moorage.model.stack import (
    StackSpec,
)
from moorage.stackfile import StackFileError, load_stack
from moorage.stackfile.interpolate import InterpolationError, interpolate_text

ENV = {"REDIS_PASSWORD": "s3cret"}
GRID = "testgrid"


def load(text: str, *, env: dict[str, str] | None = None, name: str | None = None) -> StackSpec:
    return load_stack(textwrap.dedent(text), env=ENV if env is None else env, grid=GRID, name=name)


def issues_of(
    text: str, *, env: dict[str, str] | None = None, name: str | None = None
) -> list[tuple[str, str]]:
    with pytest.raises(StackFileError) as caught:
        load(text, env=env, name=name)
    return [(issue.path, issue.message) for issue in caught.value.issues]


def service(body: str) -> str:
    """A stack with one service ``app`` whose keys (besides image) are ``body``."""
    return "stack: demo\nservices:\n  app:\n    image: busybox\n" + textwrap.indent(
        textwrap.dedent(body), "    "
    )


# --- interpolation ----------------------------------------------------------------------------

VARIABLES = {"TAG": "7-alpine", "EMPTY": "", "A_1": "one"}

INTERPOLATION_CASES = [
    pytest.param("redis:${TAG}", "redis:7-alpine", id="braced"),
    pytest.param("redis:$TAG", "redis:7-alpine", id="bare"),
    pytest.param("$A_1-$TAG", "one-7-alpine", id="bare-name-stops-at-dash"),
    pytest.param("${MISSING:-x y}", "x y", id="default-when-unset"),
    pytest.param("${EMPTY:-fallback}", "fallback", id="default-when-empty"),
    pytest.param("${TAG:-fallback}", "7-alpine", id="default-unused"),
    pytest.param("${MISSING:-}", "", id="empty-default"),
    pytest.param("${MISSING:-$TAG}", "$TAG", id="default-is-literal"),
    pytest.param("${EMPTY}", "", id="set-but-empty"),
    pytest.param("$$TAG costs $$5", "$TAG costs $5", id="escape"),
    pytest.param("$$$TAG", "$7-alpine", id="escape-then-variable"),
    pytest.param("no variables", "no variables", id="plain"),
]


@pytest.mark.parametrize(("text", "expected"), INTERPOLATION_CASES)
def test_interpolation(text: str, expected: str) -> None:
    assert interpolate_text(text, VARIABLES) == expected


FORMS = "write ${NAME}, ${NAME:-default} or $NAME, and $$ for a literal $"

INTERPOLATION_ERRORS = [
    pytest.param(
        "${MISSING}",
        "variable 'MISSING' is not set; set it in the environment or give a default with ${MISSING:-default}",
        id="braced-unset",
    ),
    pytest.param(
        "x$MISSING",
        "variable 'MISSING' is not set; set it in the environment or give a default with ${MISSING:-default}",
        id="bare-unset",
    ),
    pytest.param("a ${TAG", f"malformed variable reference '${{TAG'; {FORMS}", id="unclosed"),
    pytest.param("${}", f"malformed variable reference '${{}}'; {FORMS}", id="empty"),
    pytest.param("${1X}", f"malformed variable reference '${{1X}}'; {FORMS}", id="name-starts-with-digit"),
    pytest.param("${TAG-x}", f"malformed variable reference '${{TAG-x}}'; {FORMS}", id="dash-without-colon"),
    pytest.param(
        "${TAG:?err}", f"malformed variable reference '${{TAG:?err}}'; {FORMS}", id="unsupported-operator"
    ),
    pytest.param("cost $5", f"malformed variable reference '$5'; {FORMS}", id="dollar-digit"),
    pytest.param("end $", f"malformed variable reference '$'; {FORMS}", id="trailing-dollar"),
]


@pytest.mark.parametrize(("text", "message"), INTERPOLATION_ERRORS)
def test_interpolation_error(text: str, message: str) -> None:
    with pytest.raises(InterpolationError) as caught:
        interpolate_text(text, VARIABLES)
    assert str(caught.value) == message


def test_interpolation_never_touches_keys_and_records_paths() -> None:
    text = service("environment:\n  $KEY: $VALUE\n  OTHER: '${X:-ok}'\n")
    assert issues_of(text) == [
        (
            'services.app.environment["$KEY"]',
            "variable 'VALUE' is not set; set it in the environment or give a default with ${VALUE:-default}",
        )
    ]


def test_value_that_failed_interpolation_is_not_reported_again() -> None:
    assert [path for path, _ in issues_of(service("volumes: ['${DATA}:/data']"))] == [
        "services.app.volumes[0]"
    ]
