"""Smooth weighted round-robin cycles and per-model plans (tiers, model lists)."""

from __future__ import annotations

import random
from collections import Counter

from app.keys.key_policy import KeyPolicies, KeyPolicy
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


def test_the_shape_cache_is_bounded_too(monkeypatch) -> None:
    # Model names are the client's: each name that selects another set of keys (here: key i's own allowlist)
    # makes a shape (its keys and cycles), so the shapes are bounded with the plans, not only the plans.
    monkeypatch.setattr("app.keys.rotation._MAX_PLANS", 8)
    ids = [f"k{i}" for i in range(40)]
    planner = Planner(ids, KeyPolicies(models={kid: [f"*-{kid}", "gemini-*"] for kid in ids}))
    for kid in ids:
        assert list(planner.plan(f"bogus-{kid}").ids) == [kid]
    assert len(planner.plans) <= 8 and len(planner._shapes) <= 8


def test_models_of_one_shape_share_keys_and_cycles_and_differ_only_in_cursors() -> None:
    ids = [f"k{i}" for i in range(6)]
    policies = KeyPolicies(weights={"k0": 3}, tiers={"k4": 2, "k5": 2}, models={"k1": ["gemini-2.5-*"]},
                           exclude_models={"k2": ["*-pro"], "k3": ["*-pro"]})
    planner = Planner(ids, policies)
    a, b = planner.plan("gemini-3-flash"), planner.plan("bogus-name")
    assert list(a.ids) == list(b.ids) == ["k0", "k2", "k3", "k4", "k5"]
    assert a.rotations[0].ids is b.rotations[0].ids and a.rotations[1].ids is b.rotations[1].ids
    assert [r.cursor for r in b.rotations] == ["bogus-name|1", "bogus-name|2"]
    assert [r.tier for r in b.rotations] == [1, 2]
    pro = planner.plan("gemini-2.5-pro")
    assert list(pro.ids) == ["k0", "k1", "k4", "k5"] and len(planner._shapes) == 2
    # a plan equals one built key by key from each key's own policy
    for model in ("gemini-3-flash", "gemini-2.5-pro", "gemini-2.5-flash", "_files"):
        allowed = [kid for kid in ids if policies.of(kid).allows(model)]
        assert list(planner.plan(model).ids) == allowed


def test_a_new_model_name_asks_each_pair_of_lists_once_not_each_key(monkeypatch) -> None:
    # A client may send a fresh model name with every request: planning it must not cost a glob match per key
    # of a 2,000-key pool (it cost milliseconds of the event loop per request).
    ids = [f"k{i}" for i in range(2000)]
    lists = {kid: ["gemini-2.5-*"] for kid in ids[::10]}
    planner = Planner(ids, KeyPolicies(models=lists, exclude_models={kid: ["*-pro"] for kid in ids[5::10]},
                                       weights={kid: 3 for kid in ids[::7]}, tiers={kid: 2 for kid in ids[::3]}))
    asked: list[str] = []
    real = KeyPolicy.allows
    monkeypatch.setattr(KeyPolicy, "allows", lambda self, model: asked.append(model) or real(self, model))
    for i in range(50):
        plan = planner.plan(f"bogus-{i}")
    assert len(asked) == 50 * 3  # three distinct pairs of lists: allowlist, blocklist, none
    assert len(plan.ids) == 1800 and [r.tier for r in plan.rotations] == [1, 2]
