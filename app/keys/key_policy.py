"""Which requests a key takes and how large its share is: its weight, its tier and its model lists.

A policy is operator data, resolved like a key's route (``app/net/routes.py``): the durable store's value for
the key (set in the admin API), then the settings (``KEY_WEIGHTS``, ``KEY_TIERS``, ``KEY_MODELS``,
``KEY_EXCLUDE_MODELS``), then the defaults (weight 1, tier 1, every model, none excluded). Each field resolves
on its own, so a store value for the weight leaves the settings' tier in force.

Model lists are glob patterns on the bare model name (``gemini-2.5-*``), case-sensitive like Gemini's names.
They govern model calls only: the gateway's internal buckets for calls that name no model (files, caches,
the model list; their names start with ``_``) are open to every key.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

__all__ = ["DEFAULT_POLICY", "KeyPolicies", "KeyPolicy", "MAX_TIER", "MAX_WEIGHT", "POLICY_FIELDS",
           "PolicyError", "parse_models", "parse_tier", "parse_weight"]

#: Bounds that keep one rotation cycle (the sum of the weights of a tier) small enough to build at once.
MAX_WEIGHT = 100
MAX_TIER = 100
MAX_PATTERNS = 50
POLICY_FIELDS = ("weight", "tier", "models", "exclude_models")
_PATTERN = re.compile(r"^[A-Za-z0-9._*?\[\]!/-]{1,128}$")


class PolicyError(ValueError):
    """A weight, tier or model list that cannot be used; the message says why."""


def _bounded_int(value: Any, what: str, top: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= top:
        raise PolicyError(f"{what} must be an integer from 1 to {top}")
    return value


def parse_weight(value: Any) -> int:
    return _bounded_int(value, "weight", MAX_WEIGHT)


def parse_tier(value: Any) -> int:
    return _bounded_int(value, "tier (1 = preferred)", MAX_TIER)


def parse_models(value: Any) -> tuple[str, ...]:
    """A list of glob patterns, or one string of them separated by ``|``, commas or blanks."""
    if isinstance(value, str):
        value = [p for p in re.split(r"[|,\s]+", value) if p]
    if not isinstance(value, (list, tuple)) or not all(isinstance(p, str) for p in value):
        raise PolicyError("must be a list of model names or glob patterns (e.g. [\"gemini-2.5-*\"])")
    patterns = tuple(dict.fromkeys(p.strip().removeprefix("models/") for p in value if p.strip()))
    if len(patterns) > MAX_PATTERNS:
        raise PolicyError(f"at most {MAX_PATTERNS} patterns")
    for pattern in patterns:
        if not _PATTERN.match(pattern):
            raise PolicyError(f"{pattern[:40]!r} is not a model name or glob pattern")
    return patterns


def _matches(model: str, patterns: Iterable[str]) -> bool:
    return any(fnmatchcase(model, p) for p in patterns)


@dataclass(frozen=True, slots=True)
class KeyPolicy:
    """One key's resolved policy."""

    weight: int = 1
    tier: int = 1
    models: tuple[str, ...] = ()           # allowlist; empty = every model
    exclude_models: tuple[str, ...] = ()   # blocklist, applied after the allowlist

    @property
    def lists(self) -> bool:
        return bool(self.models or self.exclude_models)

    def allows(self, model: str) -> bool:
        """May this key be sent ``model``? Buckets (``_files``, ``_models``, ...) are not models: always."""
        if not self.lists or model.startswith("_"):
            return True
        name = model.removeprefix("models/")
        if self.models and not _matches(name, self.models):
            return False
        return not _matches(name, self.exclude_models)

    def view(self) -> dict[str, Any]:
        return {"weight": self.weight, "tier": self.tier, "models": list(self.models),
                "exclude_models": list(self.exclude_models)}


DEFAULT_POLICY = KeyPolicy()


class KeyPolicies:
    """key id -> KeyPolicy, from the settings and the durable store's overrides (O(1) reads, cached)."""

    def __init__(self, *, weights: Mapping[str, int] | None = None, tiers: Mapping[str, int] | None = None,
                 models: Mapping[str, Iterable[str]] | None = None,
                 exclude_models: Mapping[str, Iterable[str]] | None = None) -> None:
        self._settings: dict[str, dict[str, Any]] = {}
        for name, mapping in (("weight", weights), ("tier", tiers), ("models", models),
                              ("exclude_models", exclude_models)):
            for kid, value in (mapping or {}).items():
                self._settings.setdefault(kid, {})[name] = tuple(value) if name.endswith("models") else value
        self._store: dict[str, dict[str, Any]] = {}
        self._cache: dict[str, KeyPolicy] = {}

    def replace_overrides(self, overrides: Mapping[str, Mapping[str, Any]]) -> None:
        """The durable store's fields per key id (only the fields set there; the settings fill the rest)."""
        self._store = {kid: {f: v for f, v in fields.items() if v is not None}
                       for kid, fields in overrides.items()}
        self._cache = {}

    def of(self, key_id: str) -> KeyPolicy:
        policy = self._cache.get(key_id)
        if policy is None:
            store, settings = self._store.get(key_id), self._settings.get(key_id)
            if store is None and settings is None:
                policy = DEFAULT_POLICY
            else:
                policy = KeyPolicy(**{**(settings or {}), **(store or {})})
            self._cache[key_id] = policy
        return policy
