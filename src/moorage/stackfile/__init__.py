"""Stack files (Kontena's v3 format) -> ``moorage.model.stack.StackSpec``.

One pipeline, one small module per step, read top to bottom in ``pipeline.py``::

    load         YAML text -> plain data; syntax errors with line and column    load.py
    interpolate  ${NAME}, ${NAME:-default}, $NAME, $$ in string values            interpolate.py
    validate     known keys, required keys, value types -> StackDoc              validate.py
    normalize    names, mounts, ports, affinity, memory -> StackSpec (+ paths)    normalize.py
    cross-check  declared volumes, duplicate paths/ports, depends_on             crosscheck.py

Every step adds to one list of issues, each a path (``services.redis.volumes[0]``) and a message;
all of them are raised together as ``StackFileError`` (an ``InvalidInput``).

    decode_stack_file(data, source=...) -> str   a file's bytes as text (UTF-8, else the offset)
    load_stack(text, env=..., grid=..., name=None, source=...) -> StackSpec
    stack_to_dict(spec) -> dict        the normalized stack as plain YAML/JSON data
    stack_from_dict(data) -> StackSpec the way back (no interpolation)
"""

from moorage.stackfile.issues import StackFileError, StackFileIssue
from moorage.stackfile.load import decode_stack_file
from moorage.stackfile.pipeline import load_stack, stack_from_dict
from moorage.stackfile.serialize import stack_to_dict

__all__ = [
    "StackFileError",
    "StackFileIssue",
    "decode_stack_file",
    "load_stack",
    "stack_from_dict",
    "stack_to_dict",
]
