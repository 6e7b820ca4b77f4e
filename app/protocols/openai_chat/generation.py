"""Sampling, output-format and thinking parameters -> Gemini ``generationConfig`` (+ safety, cache).

``reasoning_effort`` follows **Google's own OpenAI-compatibility table** (docs/architecture.md, Wire notes), so a client gets
the same thinking depth through the gateway as through ``/v1beta/openai``:

=========  =======================  ============================  ==============================
effort     Gemini 2.5 thinkingBudget  Gemini 3 Pro thinkingLevel   Gemini 3 Flash/Flash-Lite level
=========  =======================  ============================  ==============================
none       0 (2.5 Pro: 128, its     low                           minimal
           minimum; it cannot
           switch thinking off)
minimal    1024                     low                           minimal
low        1024                     low                           low
medium     8192                     medium                        medium
high       24576                    high                          high
=========  =======================  ============================  ==============================

(``xhigh`` is read as ``high``.) Other models (2.0, Gemma …) do not take a thinkingConfig: the effort is
ignored for them rather than turned into a 400. Thought *summaries* are only requested when the client asks
(``extra_body.google.thinking_config.include_thoughts``), as on Google's layer: they are extra output.

Penalties are forwarded only when non-zero: many clients send ``0`` by default and models without penalty
support answer 400 to any value. ``logprobs`` is forwarded only when true, for the same reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.protocols.openai_chat.errors import RequestError, bounded, bounded_int
from app.protocols.openai_chat.families import is_gemini3, is_gemini25, is_pro

__all__ = ["SKIP_LEVELS", "generation_config", "google_extras", "thinking_for_effort"]

_BUDGETS = {"none": 0, "minimal": 1024, "low": 1024, "medium": 8192, "high": 24576}
_PRO3_LEVELS = {"none": "low", "minimal": "low", "low": "low", "medium": "medium", "high": "high"}
_FLASH3_LEVELS = {"none": "minimal", "minimal": "minimal", "low": "low", "medium": "medium", "high": "high"}
_PRO25_MIN_BUDGET = 128
SKIP_LEVELS = ("minimal", "low", "medium", "high")


def thinking_for_effort(model: str, effort: Any) -> dict[str, Any] | None:
    """thinkingConfig for ``reasoning_effort`` on ``model`` (table in the module docstring)."""
    if not isinstance(effort, str) or effort.lower() not in (*_BUDGETS, "xhigh"):
        raise RequestError("reasoning_effort must be one of none, minimal, low, medium, high",
                           "reasoning_effort")
    effort = effort.lower()
    effort = "high" if effort == "xhigh" else effort
    if is_gemini3(model):
        levels = _PRO3_LEVELS if is_pro(model) else _FLASH3_LEVELS
        return {"thinkingLevel": levels[effort]}
    if is_gemini25(model):
        budget = _BUDGETS[effort]
        if budget == 0 and is_pro(model):
            budget = _PRO25_MIN_BUDGET
        return {"thinkingBudget": budget}
    return None


def bounded_number(payload: Mapping[str, Any], key: str, low: float, high: float) -> float | None:
    """``payload[key]`` when it is a number within [low, high] (absent: None), else a RequestError naming it."""
    value = payload.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise RequestError(f"{key} must be a number between {low:g} and {high:g}", key)
    return value


def _integer(payload: Mapping[str, Any], key: str, low: int, param: str | None = None) -> int | None:
    value = payload.get(key)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise RequestError(f"{param or key} must be an integer >= {low}", param or key)
    return bounded_int(value, param or key)


def _stop(value: Any) -> list[str] | None:
    if value is None:
        return None
    stops = [value] if isinstance(value, str) else value
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise RequestError("stop must be a string or an array of strings", "stop")
    stops = [s for s in stops if s]
    if len(stops) > 5:
        raise RequestError("stop accepts at most 5 sequences", "stop")
    return stops or None


def _response_format(value: Any, config: dict[str, Any]) -> None:
    if value is None:
        return
    if not isinstance(value, Mapping):
        raise RequestError("response_format must be an object", "response_format")
    kind = value.get("type")
    if kind == "text":
        return
    if kind == "json_object":
        config["responseMimeType"] = "application/json"
        return
    if kind == "json_schema":
        spec = value.get("json_schema")
        if not isinstance(spec, Mapping):
            raise RequestError("response_format.json_schema must be an object with a schema",
                               "response_format.json_schema")
        schema = spec.get("schema")
        config["responseMimeType"] = "application/json"
        if schema is not None:
            if not isinstance(schema, Mapping):
                raise RequestError("response_format.json_schema.schema must be a JSON Schema object",
                                   "response_format.json_schema.schema")
            config["responseJsonSchema"] = bounded(dict(schema), "response_format.json_schema.schema")
        return
    raise RequestError(f"unsupported response_format type {kind!r}: use text, json_object or json_schema",
                       "response_format.type")


_MODALITIES = {"text": "TEXT", "image": "IMAGE"}


def _modalities(value: Any) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(m, str) for m in value):
        raise RequestError("modalities must be an array of strings", "modalities")
    out: list[str] = []
    for m in value:
        mapped = _MODALITIES.get(m.lower())
        if mapped is None:
            raise RequestError(f"unsupported modality {m!r}: the gateway returns text and images only",
                               "modalities")
        if mapped not in out:
            out.append(mapped)
    return out or None


def generation_config(payload: Mapping[str, Any], n: int) -> dict[str, Any]:
    """generationConfig for the OpenAI sampling/format fields (thinking is added by :func:`google_extras`)."""
    config: dict[str, Any] = {}
    if (t := bounded_number(payload, "temperature", 0, 2)) is not None:
        config["temperature"] = t
    if (p := bounded_number(payload, "top_p", 0, 1)) is not None:
        config["topP"] = p
    if (k := _integer(payload, "top_k", 1)) is not None:
        config["topK"] = k
    limit = _integer(payload, "max_completion_tokens", 1)
    if limit is None:
        limit = _integer(payload, "max_tokens", 1)
    if limit is not None:
        config["maxOutputTokens"] = limit
    if (stops := _stop(payload.get("stop"))) is not None:
        config["stopSequences"] = stops
    if n > 1:
        config["candidateCount"] = n
    if (seed := _integer(payload, "seed", -(2**63))) is not None:
        config["seed"] = seed
    for key, name in (("presence_penalty", "presencePenalty"), ("frequency_penalty", "frequencyPenalty")):
        if (value := bounded_number(payload, key, -2, 2)) is not None and value != 0:
            config[name] = value
    logprobs = payload.get("logprobs")
    if logprobs is not None and not isinstance(logprobs, bool):
        raise RequestError("logprobs must be a boolean", "logprobs")
    top = _integer(payload, "top_logprobs", 0)
    if top is not None and top > 20:
        raise RequestError("top_logprobs must be between 0 and 20", "top_logprobs")
    if logprobs:
        config["responseLogprobs"] = True
        if top:
            config["logprobs"] = top
    _response_format(payload.get("response_format"), config)
    if (modalities := _modalities(payload.get("modalities"))) is not None:
        config["responseModalities"] = modalities
    return config


def _first(mapping: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        if mapping.get(key) is not None:
            return mapping[key]
    return None


def _google_block(payload: Mapping[str, Any]) -> tuple[Mapping[str, Any], str] | None:
    """The Gemini-only knobs: ``extra_body.google`` (Google's documented wire shape) or top-level
    ``google`` (what some clients send)."""
    extra = payload.get("extra_body")
    if isinstance(extra, Mapping) and extra.get("google") is not None:
        block, prefix = extra["google"], "extra_body.google"
    elif payload.get("google") is not None:
        block, prefix = payload["google"], "google"
    else:
        return None
    if not isinstance(block, Mapping):
        raise RequestError(f"{prefix} must be an object", prefix)
    return block, prefix


def google_extras(payload: Mapping[str, Any], model: str, config: dict[str, Any],
                  body: dict[str, Any]) -> None:
    """Apply ``reasoning_effort`` and the ``google`` block: thinkingConfig, safetySettings, cachedContent."""
    effort = payload.get("reasoning_effort")
    thinking: dict[str, Any] = {}
    if effort is not None:
        thinking.update(thinking_for_effort(model, effort) or {})
    found = _google_block(payload)
    if found is not None:
        block, prefix = found
        tc = _first(block, "thinking_config", "thinkingConfig")
        if tc is not None:
            where = f"{prefix}.thinking_config"
            if not isinstance(tc, Mapping):
                raise RequestError("thinking_config must be an object", where)
            budget = _first(tc, "thinking_budget", "thinkingBudget")
            level = _first(tc, "thinking_level", "thinkingLevel")
            include = _first(tc, "include_thoughts", "includeThoughts")
            if effort is not None and (budget is not None or level is not None):
                raise RequestError(f"reasoning_effort cannot be combined with {where}.thinking_budget or "
                                   "thinking_level; send one of them", "reasoning_effort")
            if budget is not None and level is not None:
                raise RequestError("set only one of thinking_budget and thinking_level", where)
            if budget is not None:
                if isinstance(budget, bool) or not isinstance(budget, int) or budget < -1:
                    raise RequestError("thinking_budget must be an integer >= -1 (-1 = dynamic)",
                                       f"{where}.thinking_budget")
                thinking["thinkingBudget"] = bounded_int(budget, f"{where}.thinking_budget")
            if level is not None:
                if not isinstance(level, str) or level.lower() not in SKIP_LEVELS:
                    raise RequestError("thinking_level must be one of minimal, low, medium, high",
                                       f"{where}.thinking_level")
                thinking["thinkingLevel"] = level.lower()
            if include is not None:
                if not isinstance(include, bool):
                    raise RequestError("include_thoughts must be a boolean", f"{where}.include_thoughts")
                thinking["includeThoughts"] = include
        safety = _first(block, "safety_settings", "safetySettings")
        if safety is not None:
            if not isinstance(safety, list) or not all(isinstance(s, Mapping) for s in safety):
                raise RequestError("safety_settings must be an array of {category, threshold} objects",
                                   f"{prefix}.safety_settings")
            body["safetySettings"] = bounded([dict(s) for s in safety], f"{prefix}.safety_settings")
        cached = _first(block, "cached_content", "cachedContent")
        if cached is not None:
            if not isinstance(cached, str) or not cached:
                raise RequestError("cached_content must be a cachedContents/… name",
                                   f"{prefix}.cached_content")
            body["cachedContent"] = cached
    if thinking:
        config["thinkingConfig"] = thinking
