"""Kontena affinity rules: ``node==name``, ``node!=name``, ``label==k=v``, ``label!=k=v``, ``label==k``.

``label==k`` (no ``=v``) asks for the label key with any value. A rule of any other subject
matches no node.
"""

from __future__ import annotations

from moorage.model.stack import AffinityRule
from moorage.scheduler.context import PassContext
from moorage.scheduler.reasons import AFFINITY_MISMATCH
from moorage.scheduler.types import InstanceRequest, NodeView, Verdict

__all__ = ["Affinity", "matches"]


def matches(rule: AffinityRule, node: NodeView) -> bool:
    if rule.subject == "node":
        hit = node.name == rule.value
    elif rule.subject == "label":
        key, has_value, value = rule.value.partition("=")
        hit = node.labels.get(key) == value if has_value else key in node.labels
    else:
        return False
    return hit if rule.equal else not hit


class Affinity:
    name = "affinity"
    dynamic = False

    def check(self, ctx: PassContext, node: NodeView, request: InstanceRequest) -> Verdict | None:
        for rule in request.affinity:
            if not matches(rule, node):
                return Verdict(AFFINITY_MISMATCH.format(rule=rule.spec()))
        return None
