"""How a place in a stack file is named in messages: ``services.redis.volumes[0]``.

A path is a plain string. The root is ``""``; keys are joined with ``.`` and list items get
``[index]``. A key that is not a plain word (letters, digits, ``_``, ``-``) is quoted, so
``services["my.app"]`` cannot be mistaken for ``services.my.app`` (JSON's quoting, which escapes
every control character).
"""

from __future__ import annotations

import json
import re

__all__ = ["ROOT", "item_path", "key_path", "parent_path"]

ROOT = ""

_PLAIN_KEY_RE = re.compile(r"[A-Za-z0-9_-]+")
_KEY_SHOWN_MAX = 80


def key_path(parent: str, key: object) -> str:
    """The path of ``key`` in the mapping at ``parent``. A key longer than 80 characters is quoted
    cut short (``services["aaaa…"]``), as ``model.quoting.shown`` quotes a value."""
    text = key if isinstance(key, str) else str(key)
    if len(text) > _KEY_SHOWN_MAX:
        return f'{parent}[{json.dumps(text[:_KEY_SHOWN_MAX])[:-1]}…"]'
    if _PLAIN_KEY_RE.fullmatch(text):
        return f"{parent}.{text}" if parent else text
    return f"{parent}[{json.dumps(text)}]"


def item_path(parent: str, index: int) -> str:
    """The path of item ``index`` of the list at ``parent``."""
    return f"{parent}[{index}]"


def parent_path(path: str) -> str:
    """The path one level up: ``services.redis.volumes[0]`` -> ``services.redis.volumes``."""
    if path.endswith("]"):
        return path[: path.rfind("[")]
    return path.rpartition(".")[0]
