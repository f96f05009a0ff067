"""Step 2, interpolate: put variable values into every string value of the loaded data.

Like docker-compose, this runs after YAML parsing, on string values only (never on keys), so a
value can never change the file's structure. The forms:

    ${NAME}            the value of NAME; an error if NAME is not set
    ${NAME:-default}   the value of NAME, or ``default`` when NAME is unset or empty;
                       the default is taken literally, up to the first ``}``
    $NAME              the same as ${NAME}
    $$                 a literal ``$``

NAME is a letter or ``_`` followed by letters, digits or ``_``. Any other ``$`` is an error that
quotes it. The variables are the caller's environment plus ``STACK`` (the stack's name) and
``GRID`` (the grid it is installed in), which win over same-named environment variables.

A stack file cannot read the CLI's own settings: a reference to any ``MOORAGE_*`` variable
(``MOORAGE_TOKEN``, the admin token, above all), with or without a default, is an error, so a
stack file from elsewhere cannot copy the user's token into a container's environment.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from moorage.stackfile.issues import Issues
from moorage.stackfile.paths import item_path, key_path

__all__ = ["RESERVED_PREFIX", "InterpolationError", "interpolate", "interpolate_text"]

RESERVED_PREFIX = "MOORAGE_"
"""Variables of the ``moorage`` command itself (its URL, token, grid): never readable by a stack file."""

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_REFERENCE_RE = re.compile(
    rf"""\$(?:
        (?P<escaped>\$)
        |(?P<bare>{_NAME})
        |\{{(?P<braced>{_NAME})(?::-(?P<default>[^}}]*))?\}}
        |(?P<malformed>)
    )""",
    re.X,
)
_FORMS = "write ${NAME}, ${NAME:-default} or $NAME, and $$ for a literal $"


class InterpolationError(ValueError):
    """A string whose ``$`` references cannot be resolved; the message says which and why."""


def interpolate(value: object, variables: Mapping[str, str], issues: Issues, path: str) -> object:
    """``value`` with every string in it interpolated; a string that fails is kept as written."""
    if isinstance(value, str):
        try:
            return interpolate_text(value, variables)
        except InterpolationError as error:
            issues.add(path, str(error))
            return value
    if isinstance(value, dict):
        return {k: interpolate(v, variables, issues, key_path(path, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, variables, issues, item_path(path, i)) for i, v in enumerate(value)]
    return value


def interpolate_text(text: str, variables: Mapping[str, str]) -> str:
    """``text`` with its references replaced; raises ``InterpolationError`` at the first bad one."""

    def replace(match: re.Match[str]) -> str:
        if match["escaped"] is not None:
            return "$"
        name = match["bare"] or match["braced"]
        if name is None:
            raise InterpolationError(
                f"malformed variable reference '{_quote(text, match.start())}'; {_FORMS}"
            )
        if name.upper().startswith(RESERVED_PREFIX):
            raise InterpolationError(
                f"variable '{name}' cannot be used in a stack file: {RESERVED_PREFIX}* variables hold "
                "the moorage command's own settings and token; pass the value under another name, "
                "e.g. ${APP_SETTING}"
            )
        value = variables.get(name)
        default = match["default"]
        if default is not None:
            return value if value else default
        if value is None:
            raise InterpolationError(
                f"variable '{name}' is not set; set it in the environment "
                f"or give a default with ${{{name}:-default}}"
            )
        return value

    return _REFERENCE_RE.sub(replace, text)


def _quote(text: str, start: int) -> str:
    """The bad reference starting at ``text[start]`` (a ``$``), as the user wrote it."""
    if text.startswith("${", start):
        end = text.find("}", start)
        return text[start:] if end < 0 else text[start : end + 1]
    return text[start : start + 2]
