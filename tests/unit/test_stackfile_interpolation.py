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


# --- the CLI's own variables ------------------------------------------------------------------

SECRETS = {"MOORAGE_TOKEN": "admin-secret", "MOORAGE_URL": "http://127.0.0.1:8470", "APP": "ok"}


@pytest.mark.parametrize(
    ("text", "name"),
    [
        pytest.param("${MOORAGE_TOKEN}", "MOORAGE_TOKEN", id="braced-token"),
        pytest.param("x-$MOORAGE_TOKEN", "MOORAGE_TOKEN", id="bare-token"),
        pytest.param("${MOORAGE_TOKEN:-none}", "MOORAGE_TOKEN", id="with-a-default"),
        pytest.param("${MOORAGE_URL}", "MOORAGE_URL", id="url"),
        pytest.param("${MOORAGE_NOT_SET:-x}", "MOORAGE_NOT_SET", id="unset-one"),
        pytest.param("${moorage_token}", "moorage_token", id="lower-case"),
    ],
)
def test_moorage_variables_are_refused(text: str, name: str) -> None:
    with pytest.raises(InterpolationError) as caught:
        interpolate_text(text, SECRETS)
    assert str(caught.value) == (
        f"variable '{name}' cannot be used in a stack file: MOORAGE_* variables hold the moorage "
        "command's own settings and token; pass the value under another name, e.g. ${APP_SETTING}"
    )
    assert "admin-secret" not in str(caught.value)


def test_a_stack_file_cannot_copy_the_token_into_a_service() -> None:
    text = service("""\
        environment:
          - STOLEN=${MOORAGE_TOKEN}
          - FINE=$APP
    """)
    found = issues_of(text, env=SECRETS)
    assert [path for path, _ in found] == ["services.app.environment[0]"]
    assert "cannot be used in a stack file" in found[0][1]
    assert all("admin-secret" not in message for _, message in found)


def test_a_variable_that_only_contains_moorage_is_read() -> None:
    assert interpolate_text("${APP_MOORAGE_TOKEN:-d}", SECRETS) == "d"
