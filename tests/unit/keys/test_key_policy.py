"""Per-key policies: parsing with reasons, allow/block lists on bare model names, store over settings."""

from __future__ import annotations

import pytest

from app.keys.key_policy import (DEFAULT_POLICY, KeyPolicies, KeyPolicy, PolicyError, parse_models, parse_tier,
                                 parse_weight)


@pytest.mark.parametrize("value", [0, -1, 101, 2.5, "3", True, None])
def test_bad_weights_are_refused(value: object) -> None:
    with pytest.raises(PolicyError, match="weight must be an integer from 1 to 100"):
        parse_weight(value)


def test_good_numbers_and_patterns() -> None:
    assert parse_weight(1) == 1 and parse_weight(100) == 100 and parse_tier(2) == 2
    assert parse_models("gemini-2.5-*|gemini-3-* models/gemini-pro") == (
        "gemini-2.5-*", "gemini-3-*", "gemini-pro")
    assert parse_models(["a", "a", " "]) == ("a",)
    assert parse_models([]) == ()


@pytest.mark.parametrize("value", [42, [1], ["bad pattern;"], ["x" * 200], [f"m{i}" for i in range(51)]])
def test_bad_model_lists_are_refused(value: object) -> None:
    with pytest.raises(PolicyError):
        parse_models(value)


def test_allowlist_then_blocklist_on_the_bare_name() -> None:
    policy = KeyPolicy(models=("gemini-2.5-*",), exclude_models=("*-pro",))
    assert policy.allows("gemini-2.5-flash") and policy.allows("models/gemini-2.5-flash")
    assert not policy.allows("gemini-2.5-pro") and not policy.allows("gemini-3-pro-preview")
    assert not policy.allows("Gemini-2.5-flash")  # Gemini's names are case-sensitive
    assert policy.allows("_files") and policy.allows("_models")  # buckets are not models
    assert DEFAULT_POLICY.allows("anything") and KeyPolicy(exclude_models=("x",)).allows("y")


def test_store_values_override_settings_field_by_field() -> None:
    policies = KeyPolicies(weights={"a": 3}, tiers={"a": 2}, models={"a": ["gemini-*"]})
    assert policies.of("a") == KeyPolicy(3, 2, ("gemini-*",))
    assert policies.of("b") is DEFAULT_POLICY
    policies.replace_overrides({"a": {"weight": 5, "tier": None, "models": ()}, "b": {"tier": 3}})
    assert policies.of("a") == KeyPolicy(5, 2, ())
    assert policies.of("b") == KeyPolicy(tier=3)
    assert policies.of("a").view() == {"weight": 5, "tier": 2, "models": [], "exclude_models": []}
