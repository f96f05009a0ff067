"""Step 5, cross-check: rules that span several parts of the stack.

- every named mount uses a volume declared in the top-level ``volumes:``;
- no container path is mounted twice in one service;
- no host port (per protocol) is published twice by one service;
- ``depends_on`` names services of this stack, each once, and never forms a cycle.
"""

from __future__ import annotations

from collections.abc import Mapping

from moorage.model.mount import clean_path
from moorage.model.quoting import shown
from moorage.model.stack import MountKind
from moorage.stackfile.document import At
from moorage.stackfile.issues import Issues
from moorage.stackfile.normalize import ServiceDraft, StackDraft

__all__ = ["cross_check", "undeclared_volume"]


def undeclared_volume(alias: str) -> str:
    return (
        f"volume '{shown(alias)}' is not declared in the top-level volumes: section; "
        f'add "volumes: {{{shown(alias)}: {{external: true}}}}"'
    )


def cross_check(draft: StackDraft, issues: Issues) -> None:
    for service in draft.services:
        _check_volumes_declared(service, draft.volume_aliases, issues)
        _check_container_paths(service, issues)
        _check_host_ports(service, issues)
    _check_dependencies(draft.services, issues)


def _check_volumes_declared(service: ServiceDraft, declared: frozenset[str], issues: Issues) -> None:
    for mount in service.mounts:
        alias = mount.value.source
        if mount.value.kind is MountKind.NAMED and alias is not None and alias not in declared:
            issues.add(mount.path, undeclared_volume(alias))


def _check_container_paths(service: ServiceDraft, issues: Issues) -> None:
    first: dict[str, str] = {}
    for mount in service.mounts:
        target = clean_path(mount.value.target)
        if target in first:
            issues.add(
                mount.path,
                f"container path '{shown(target)}' is already mounted by {first[target]}; "
                "mount each container path only once",
            )
        first.setdefault(target, mount.path)


def _check_host_ports(service: ServiceDraft, issues: Issues) -> None:
    first: dict[tuple[int, str], str] = {}
    for port in service.ports:
        key = (port.value.host_port, port.value.protocol)
        if key in first:
            issues.add(
                port.path,
                f"host port {key[0]}/{key[1]} is already published by {first[key]}; "
                "publish each host port only once",
            )
        first.setdefault(key, port.path)


def _check_dependencies(services: tuple[ServiceDraft, ...], issues: Issues) -> None:
    names = [service.spec.name for service in services]
    known = set(names)
    edges: dict[str, list[At[str]]] = {}
    for service in services:
        seen: dict[str, str] = {}
        edges[service.spec.name] = []
        for dependency in service.depends_on:
            target = dependency.value
            if target not in known:
                issues.add(
                    dependency.path,
                    f"unknown service '{shown(target)}'; depends_on can name only services of this stack: "
                    + ", ".join(names),
                )
            elif target in seen:
                issues.add(
                    dependency.path, f"'{shown(target)}' is already listed at {seen[target]}; list it once"
                )
            else:
                seen[target] = dependency.path
                edges[service.spec.name].append(dependency)
    _report_cycles(names, edges, issues)


def _report_cycles(names: list[str], edges: Mapping[str, list[At[str]]], issues: Issues) -> None:
    """Depth-first search in file order; every edge back into the current trail closes a cycle."""
    done: set[str] = set()
    for start in names:
        if start in done:
            continue
        trail = [start]
        pending = [iter(edges[start])]
        while pending:
            dependency = next(pending[-1], None)
            if dependency is None:
                pending.pop()
                done.add(trail.pop())
                continue
            target = dependency.value
            if target in trail:
                cycle = [*trail[trail.index(target) :], target]
                issues.add(
                    dependency.path,
                    f"depends_on forms a cycle: {' -> '.join(cycle)}; remove one of these dependencies",
                )
            elif target not in done:
                trail.append(target)
                pending.append(iter(edges[target]))
