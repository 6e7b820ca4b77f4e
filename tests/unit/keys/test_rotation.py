"""Smooth weighted round-robin cycles and per-model plans (tiers, model lists)."""

from __future__ import annotations

import random
from collections import Counter

from app.keys.key_policy import KeyPolicies
from app.keys.rotation import Planner, smooth_order


def nginx(ids: list[str], weights: list[int]) -> list[str]:
    """nginx's smooth weighted round-robin, step by step over every key (the reference)."""
    total = sum(weights)
    current = [0] * len(ids)
    out = []
    for _ in range(total):
        best = None
        for i, w in enumerate(weights):
            current[i] += w
            if best is None or current[i] > current[best]:
                best = i
        current[best] -= total
        out.append(ids[best])
    return out


def test_nginx_classic_example_is_interleaved() -> None:
    assert smooth_order(["a", "b", "c"], [5, 1, 1]) == ["a", "a", "b", "a", "c", "a", "a"]
    assert smooth_order(["a", "b"], [1, 3]) == ["b", "a", "b", "b"]


def test_matches_nginx_on_random_pools() -> None:
    rng = random.Random(20)
    for _ in range(300):
        n = rng.randint(1, 12)
        ids = [f"k{i}" for i in range(n)]
        weights = [rng.choice([1, 1, 2, 3, 5, 7]) for _ in range(n)]
        # nginx's cycle over weights reduced by their gcd is the same order: compare on that cycle
        assert smooth_order(ids, weights) == nginx(ids, weights)[:len(smooth_order(ids, weights))]


def test_weights_reduce_by_their_gcd_and_equal_weights_keep_pool_order() -> None:
    assert smooth_order(["a", "b"], [6, 2]) == smooth_order(["a", "b"], [3, 1])
    assert smooth_order(["a", "b", "c"], [4, 4, 4]) == ["a", "b", "c"]
    assert smooth_order([], []) == []


def test_share_of_each_key_is_its_weight_and_no_key_runs_three_in_a_row() -> None:
    ids, weights = ["a", "b", "c"], [3, 1, 2]
    cycle = smooth_order(ids, weights)
    assert Counter(cycle) == {"a": 3, "b": 1, "c": 2}
    twice = cycle + cycle
    assert not any(twice[i] == twice[i + 1] == twice[i + 2] for i in range(len(cycle)))


def test_a_plain_pool_has_one_rotation_named_by_the_model() -> None:
    ids = ["a", "b", "c"]
    plan = Planner(ids, KeyPolicies()).plan("gemini-2.5-flash")
    assert [(r.cursor, list(r.ids)) for r in plan.rotations] == [("gemini-2.5-flash", ids)]
    assert plan.rotations[0].ids is ids  # no copy: the hot path walks the pool list itself


def test_tiers_lists_and_weights_make_the_plan() -> None:
    policies = KeyPolicies(weights={"a": 2}, tiers={"c": 2, "d": 3},
                           models={"b": ["gemini-2.5-*"]}, exclude_models={"c": ["*-pro"]})
    planner = Planner(["a", "b", "c", "d"], policies)
    flash = planner.plan("gemini-2.5-flash")
    assert [(r.cursor, list(r.ids)) for r in flash.rotations] == [
        ("gemini-2.5-flash|1", ["a", "b", "a"]), ("gemini-2.5-flash|2", ["c"]), ("gemini-2.5-flash|3", ["d"])]
    pro = planner.plan("models/gemini-2.5-pro")
    assert [list(r.ids) for r in pro.rotations] == [["a", "b", "a"], ["d"]]
    assert list(pro.ids) == ["a", "b", "d"]
    other = planner.plan("gemini-3-pro-preview")
    assert [list(r.ids) for r in other.rotations] == [["a"], ["c"], ["d"]]  # a lone key: its weight is moot
    assert planner.plan("gemini-2.5-flash") is flash  # cached until the pool or the policies change


def test_a_model_no_key_may_serve_has_an_empty_plan_and_buckets_are_open() -> None:
    planner = Planner(["a", "b"], KeyPolicies(models={"a": ["gemini-2.5-*"], "b": ["gemini-2.5-*"]}))
    assert planner.plan("gemini-3-pro-preview").rotations == ()
    assert list(planner.plan("_files").ids) == ["a", "b"]


def test_the_plan_cache_is_bounded() -> None:
    planner = Planner(["a"], KeyPolicies())
    for i in range(3000):
        planner.plan(f"model-{i}")
    assert len(planner.plans) <= 1024


def test_the_cycle_cache_is_bounded_too(monkeypatch) -> None:
    # Model names are the client's: each name that selects another set of keys (here: key i's own allowlist)
    # makes a cycle, so the cycles are bounded with the plans, not only the plans.
    monkeypatch.setattr("app.keys.rotation._MAX_PLANS", 8)
    ids = [f"k{i}" for i in range(40)]
    planner = Planner(ids, KeyPolicies(models={kid: [f"*-{kid}", "gemini-*"] for kid in ids}))
    for kid in ids:
        assert list(planner.plan(f"bogus-{kid}").ids) == [kid]
    assert len(planner.plans) <= 8 and len(planner._cycles) <= 8
