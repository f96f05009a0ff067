"""The stack file pipeline, top to bottom::

    text -load-> data -interpolate-> data -validate-> StackDoc -normalize-> StackDraft
         -cross_check-> StackSpec

Each step adds what it finds to one ``Issues`` and the next step goes on; ``_build`` raises them
all together as a ``StackFileError`` at the end. Only a file that is not YAML stops at once.
"""

from __future__ import annotations

from collections.abc import Mapping

from moorage.model.stack import StackSpec
from moorage.stackfile.crosscheck import cross_check
from moorage.stackfile.interpolate import InterpolationError, interpolate, interpolate_text
from moorage.stackfile.issues import Issues
from moorage.stackfile.load import load_yaml
from moorage.stackfile.normalize import declared_stack_name, normalize
from moorage.stackfile.paths import ROOT
from moorage.stackfile.validate import validate

__all__ = ["load_stack", "stack_from_dict"]

STORED_SOURCE = "<stored stack>"


def load_stack(
    text: str,
    *,
    env: Mapping[str, str],
    grid: str,
    name: str | None = None,
    source: str = "<stack file>",
) -> StackSpec:
    """The stack in the YAML ``text``; raises ``StackFileError`` listing every problem.

    ``env`` supplies the variables for ``${NAME}``; ``STACK`` and ``GRID`` are added (``name``,
    when given, overrides the name in ``stack:``). ``source`` names the file in messages.
    """
    issues = Issues()
    data = load_yaml(text, source=source, issues=issues)
    variables = {**env, "GRID": grid, "STACK": name or _declared_name(data, env, grid)}
    data = interpolate(data, variables, issues, ROOT)
    return _build(data, issues, name=name, source=source, null_stack=False)


def stack_from_dict(data: Mapping[str, object]) -> StackSpec:
    """The stack that ``stack_to_dict`` wrote; raises ``StackFileError`` if ``data`` is not one.

    Unlike a stack file, it may be the ``null`` stack (how stand-alone services are stored).
    """
    return _build(dict(data), Issues(), name=None, source=STORED_SOURCE, null_stack=True)


def _build(data: object, issues: Issues, *, name: str | None, source: str, null_stack: bool) -> StackSpec:
    doc = validate(data, issues, source=source)
    draft = normalize(doc, issues, name=name, null_stack=null_stack)
    cross_check(draft, issues)
    issues.raise_if_any(source)
    return draft.spec


def _declared_name(data: object, env: Mapping[str, str], grid: str) -> str:
    """The name in ``stack:``, for ``$STACK``; "" when there is none (validation reports that)."""
    stack = data.get("stack") if isinstance(data, dict) else None
    if not isinstance(stack, str):
        return ""
    try:
        return declared_stack_name(interpolate_text(stack, {**env, "GRID": grid}))
    except InterpolationError:
        return ""
