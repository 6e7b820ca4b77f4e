"""The order keys take turns in: per model, one rotation per tier, each a smooth weighted round-robin cycle.

A rotation is the cycle of the keys of one tier allowed for the model, each key appearing ``weight`` times,
interleaved the way nginx's smooth weighted round-robin interleaves them (weights 5, 1, 1 give
``a a b a c a a``, never a burst on one key). The store walks that cycle with a cursor, skipping keys that
are disabled, cooling or excluded, so over a cycle a key of weight 3 serves three times as often as a key of
weight 1.

Plans are built when a model is first asked for after the keys or their policies changed, never per
request; a pool where every key has weight 1, tier 1 and no model lists gets the key list itself as its one
rotation, with the model as its cursor, exactly as before weights existed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import reduce
from math import gcd

from .key_policy import KeyPolicies

__all__ = ["Plan", "Planner", "Rotation", "smooth_order"]

#: Plans kept per pool version: model names are the clients' choice, so the cache is bounded.
_MAX_PLANS = 1024


def smooth_order(ids: Sequence[str], weights: Sequence[int]) -> list[str]:
    """One cycle of nginx's smooth weighted round-robin over ``ids`` (weights reduced by their gcd).

    nginx's rule: every step adds each key's weight to its score, serves the highest score (the first in
    order on a tie) and takes the total weight off the served key. Keys of equal weight are served in turn,
    so the step only compares one candidate per distinct weight: O(cycle x distinct weights), not O(cycle x
    keys), which keeps a 2,000-key pool with a few weight classes cheap to plan.
    """
    if not ids:
        return []
    divisor = reduce(gcd, weights)
    groups: dict[int, list[int]] = {}
    for index, weight in enumerate(weights):
        groups.setdefault(weight // divisor, []).append(index)
    if len(groups) == 1:
        return list(ids)
    classes = [(weight, members) for weight, members in groups.items()]
    served = [0] * len(classes)
    total = sum(weights) // divisor
    order: list[str] = []
    for step in range(1, total + 1):
        best = -1
        best_score = best_index = 0
        for g, (weight, members) in enumerate(classes):
            turn = served[g]
            score = step * weight - total * (turn // len(members))
            index = members[turn % len(members)]
            if best < 0 or score > best_score or (score == best_score and index < best_index):
                best, best_score, best_index = g, score, index
        served[best] += 1
        order.append(ids[best_index])
    return order


@dataclass(frozen=True, slots=True)
class Rotation:
    """One tier's cycle for one model and the name of its cursor in the store."""

    cursor: str
    ids: Sequence[str]
    tier: int = 1


@dataclass(frozen=True, slots=True)
class Plan:
    """A model's rotations, preferred tier first, and every key allowed for it (pool order)."""

    rotations: tuple[Rotation, ...]
    ids: Sequence[str]


class Planner:
    """Plans per model for one pool and one set of policies; replaced whole when either changes.

    Keys are grouped by their model lists, so a new model name costs one ``allows`` per distinct pair of lists
    (not per key) and the set of groups that allow it (its *shape*); models of one shape share the allowed
    keys and the tiers' cycles, and only their cursor names differ. That keeps a 2,000-key pool's plan for a
    model name never seen before (a client may send any) in the microseconds.
    """

    __slots__ = ("_ids", "_policies", "_plain", "_lists", "_classes", "plans", "_shapes")

    def __init__(self, ids: list[str], policies: KeyPolicies) -> None:
        self._ids = ids
        self._policies = policies
        resolved = [policies.of(kid) for kid in ids]
        self._lists = any(p.lists for p in resolved)
        self._plain = not self._lists and all(p.weight == 1 and p.tier == 1 for p in resolved)
        groups: dict[tuple[tuple[str, ...], tuple[str, ...]], list[int]] = {}
        if self._lists:
            for index, policy in enumerate(resolved):
                groups.setdefault((policy.models, policy.exclude_models), []).append(index)
        #: (a policy with the group's lists, the group's key indexes in pool order)
        self._classes = [(resolved[members[0]], members) for members in groups.values()]
        #: model -> plan; the manager reads it directly and calls ``plan`` on a miss.
        self.plans: dict[str, Plan] = {}
        self._shapes: dict[tuple[bool, ...], tuple[Sequence[str], tuple[tuple[int, list[str]], ...]]] = {}

    @property
    def lists(self) -> bool:
        """Whether some key has a model list (else every key may be sent every model)."""
        return self._lists

    def plan(self, model: str) -> Plan:
        plan = self.plans.get(model)
        if plan is None:
            if len(self.plans) >= _MAX_PLANS:
                self.plans.clear()  # cleared in place: the manager holds this dict
            plan = self.plans[model] = self._build(model)
        return plan

    def _build(self, model: str) -> Plan:
        if self._plain:
            return Plan((Rotation(model, self._ids),), self._ids)
        shape_key = tuple(policy.allows(model) for policy, _ in self._classes)
        shape = self._shapes.get(shape_key)
        if shape is None:
            if len(self._shapes) >= _MAX_PLANS:
                self._shapes.clear()  # one per distinct set of groups a model selects: bounded like the plans
            shape = self._shapes[shape_key] = self._shape(shape_key)
        allowed, tiers = shape
        single = len(tiers) == 1
        return Plan(tuple(Rotation(model if single else f"{model}|{tier}", cycle, tier) for tier, cycle in tiers),
                    allowed)

    def _shape(self, shape_key: tuple[bool, ...]) -> tuple[Sequence[str], tuple[tuple[int, list[str]], ...]]:
        """The keys the allowing groups hold (pool order) and each tier's smooth cycle over them."""
        if self._lists:
            ids = self._ids
            allowed: Sequence[str] = [ids[i] for i in sorted(i for (_, members), ok in zip(self._classes, shape_key)
                                                              if ok for i in members)]
        else:
            allowed = self._ids
        of = self._policies.of
        tiers: dict[int, list[str]] = {}
        for kid in allowed:
            tiers.setdefault(of(kid).tier, []).append(kid)
        return allowed, tuple((tier, smooth_order(members, [of(kid).weight for kid in members]))
                              for tier, members in sorted(tiers.items()))
