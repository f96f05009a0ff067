"""The small text formats inside a service: ports, affinity rules, memory sizes, deploy strategies.

Each ``parse_*`` returns the model value or raises ``FormatError`` whose message is the sentence a
user sees after the path.

    ports      "8080:80"  "53:53/udp"          HOST:CONTAINER[/tcp|/udp], ports 1 to 65535
    affinity   node==NAME  node!=NAME  label==KEY=VALUE  label!=KEY=VALUE  label==KEY  label!=KEY
    memory     268435456  "256m"  "1g"  "1.5g"  a number of bytes, or a number with b, k, m, g or t
               (binary: 1k = 1024; an optional trailing b or ib as in 256mb, 1GiB); at least 6m,
               Docker's minimum
    strategy   ha | daemon | random
"""

from __future__ import annotations

import re
from decimal import Decimal

from moorage.model.quoting import shown
from moorage.model.stack import AffinityRule, DeployStrategy, PortMapping

__all__ = [
    "MAX_MEMORY",
    "MIN_MEMORY",
    "FormatError",
    "format_memory",
    "parse_affinity",
    "parse_memory",
    "parse_port",
    "parse_strategy",
]

MIN_MEMORY = 6 * 1024**2
"""Docker refuses a memory limit below 6 MiB."""
MAX_MEMORY = 2**62
"""Far above any host; keeps sizes inside a 64-bit database integer."""

_PORT_RE = re.compile(r"(?:(?P<host>[0-9]+):)?(?P<container>[0-9]+)(?:/(?P<protocol>[A-Za-z]+))?")
_PROTOCOLS = ("tcp", "udp")
_MAX_PORT = 65535

_AFFINITY_RE = re.compile(r"(?P<subject>node|label)(?P<op>==|!=)(?P<value>.+)")
_NODE_VALUE_RE = re.compile(r"[^\s=]+")
_LABEL_VALUE_RE = re.compile(r"[^\s=]+(?:=[^\s=]+)?")
_AFFINITY_FORMS = "node==NAME, node!=NAME, label==KEY=VALUE, label!=KEY=VALUE, label==KEY or label!=KEY"

_MEMORY_RE = re.compile(r"(?P<number>[0-9]{1,15}(?:\.[0-9]{1,9})?)\s*(?P<unit>[bkmgt])?(?:i?b)?", re.I)
_UNITS = {"b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


class FormatError(ValueError):
    """Text that is not in the format its field needs; the message says what to write."""


def parse_port(text: str) -> PortMapping:
    match = _PORT_RE.fullmatch(text.strip())
    if match is None:
        raise FormatError(
            f'\'{shown(text)}\' is not a port mapping; write HOST:CONTAINER, e.g. "8080:80" or "53:53/udp"'
        )
    if match["host"] is None:
        raise FormatError(
            f"'{shown(text)}' needs a host port to publish on; write HOST:{match['container']}, "
            f'e.g. "{match["container"]}:{match["container"]}"'
        )
    protocol = (match["protocol"] or "tcp").lower()
    if protocol not in _PROTOCOLS:
        raise FormatError(
            f"'{shown(text)}': protocol '{shown(match['protocol'])}' is not supported; use tcp or udp"
        )
    host = _port_number(match["host"], "host", text)
    container = _port_number(match["container"], "container", text)
    return PortMapping(host_port=host, container_port=container, protocol=protocol)


def _port_number(digits: str, which: str, text: str) -> int:
    number = int(digits) if len(digits) <= 5 else _MAX_PORT + 1
    if not 1 <= number <= _MAX_PORT:
        raise FormatError(
            f"'{shown(text)}': {which} port {digits} is out of range; ports are 1 to {_MAX_PORT}"
        )
    return number


def parse_affinity(text: str) -> AffinityRule:
    match = _AFFINITY_RE.fullmatch(text)
    value_re = _NODE_VALUE_RE if match is not None and match["subject"] == "node" else _LABEL_VALUE_RE
    if match is None or not value_re.fullmatch(match["value"]):
        raise FormatError(f"'{shown(text)}' is not an affinity rule; use {_AFFINITY_FORMS}")
    return AffinityRule(subject=match["subject"], equal=match["op"] == "==", value=match["value"])


def parse_memory(value: str | int) -> int:
    size = value if isinstance(value, int) else _memory_text(value)
    if size < MIN_MEMORY:
        raise FormatError(f"'{shown(str(value))}' is less than 6m, the smallest memory limit Docker accepts")
    if size > MAX_MEMORY:
        raise FormatError(f"'{shown(str(value))}' is too large for a memory size")
    return size


def _memory_text(text: str) -> int:
    match = _MEMORY_RE.fullmatch(text.strip())
    if match is None:
        raise FormatError(
            f"'{shown(text)}' is not a memory size; write a number of bytes, "
            "or a number with k, m, g or t, e.g. 256m or 1g"
        )
    unit = (match["unit"] or "b").lower()
    return int(Decimal(match["number"]) * _UNITS[unit])


def parse_strategy(text: str) -> DeployStrategy:
    try:
        return DeployStrategy(text)
    except ValueError:
        choices = ", ".join(strategy.value for strategy in DeployStrategy)
        raise FormatError(f"unknown deploy strategy '{shown(text)}'; use one of {choices}") from None


def format_memory(size: int) -> str | int:
    """``size`` bytes the way a person writes it: ``"256m"`` when exact, else the plain number."""
    for unit in ("t", "g", "m", "k"):
        if size % _UNITS[unit] == 0:
            return f"{size // _UNITS[unit]}{unit}"
    return size
