"""Anthropic ``POST /v1/messages`` body -> a Gemini ``GenerateContentRequest`` (and countTokens body).

Pure: fetched media and remembered thought signatures are prepared by the service and passed in. Every
refusal is a RequestError naming the field. Fields with no Gemini meaning (``cache_control``,
``service_tier``, ``container``, ``context_management``, ``mcp_servers``, ``inference_geo``, unknown ones)
are accepted and ignored: Claude Code adds fields with its betas and must not be refused for them.

Thinking (``thinking``):

* ``enabled`` + ``budget_tokens``: Gemini 2.5 ``thinkingBudget`` = the budget (capped at the model's 24576 /
  32768 maximum); Gemini 3 ``thinkingLevel`` low (< 4096), medium (< 16384) or high. Thoughts are included.
* ``adaptive``: Gemini's dynamic thinking (budget -1 on 2.5, the model's default level on 3), included.
* ``disabled``: the least thinking the model allows (the same table as ``reasoning_effort: none``).
* ``display: "omitted"`` keeps thought text out but still returns signatures in empty thinking blocks.
* ``output_config.effort`` -> the ``reasoning_effort`` table when ``thinking`` does not decide.
Models outside Gemini 2.5/3 take no thinkingConfig; the setting is ignored for them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from app.protocols.anthropic.content import translate_messages
from app.protocols.anthropic.models import DEFAULT_MODEL_MAP, resolve_model
from app.protocols.anthropic.tools import tool_config, translate_tools
from app.protocols.openai_chat.errors import RequestError
from app.protocols.openai_chat.families import bare_model, is_gemini3, is_gemini25, is_pro
from app.protocols.openai_chat.generation import thinking_for_effort

__all__ = ["MessagesRequest", "count_tokens_body", "parse_messages_request"]


@dataclass
class MessagesRequest:
    model: str               # the Gemini model called
    requested_model: str     # as the client sent it, echoed in responses
    body: dict[str, Any]     # GenerateContentRequest
    stream: bool
    thinking: bool           # thinking blocks are returned (signatures ride in them)
    user_id: str | None      # metadata.user_id: analytics user and affinity hint


def _number(payload: Mapping[str, Any], key: str, high: float) -> float | None:
    value = payload.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= high:
        raise RequestError(f"must be a number between 0 and {high:g}", key)
    return value


def _integer(value: Any, key: str, low: int) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise RequestError(f"must be an integer >= {low}", key)
    return value


def _stop_sequences(value: Any) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise RequestError("must be an array of strings", "stop_sequences")
    stops = [s for s in value if s]
    if len(stops) > 5:
        raise RequestError("Gemini accepts at most 5 stop sequences", "stop_sequences")
    return stops or None


def _level(model: str, budget: int) -> str:
    if budget < 4096:
        return "low"
    return "medium" if budget < 16384 else "high"


def _thinking(payload: Mapping[str, Any], model: str) -> tuple[dict[str, Any] | None, bool]:
    """(thinkingConfig or None, whether thinking blocks are returned)."""
    if not (is_gemini25(model) or is_gemini3(model)):
        return None, False
    thinking = payload.get("thinking")
    if thinking is None:
        effort = payload.get("output_config", {}).get("effort") if isinstance(payload.get("output_config"),
                                                                              Mapping) else None
        if isinstance(effort, str):
            return thinking_for_effort(model, "high" if effort in ("xhigh", "max") else effort), False
        return None, False
    kind = thinking.get("type") if isinstance(thinking, Mapping) else None
    shown = thinking.get("display") != "omitted" if isinstance(thinking, Mapping) else False
    if kind == "disabled":
        return thinking_for_effort(model, "none"), False
    if kind == "adaptive":
        config: dict[str, Any] = {} if is_gemini3(model) else {"thinkingBudget": -1}
        return {**config, "includeThoughts": shown}, True
    if kind == "enabled":
        budget = _integer(thinking.get("budget_tokens"), "thinking.budget_tokens", 1)
        if is_gemini3(model):
            return {"thinkingLevel": _level(model, budget), "includeThoughts": shown}, True
        return {"thinkingBudget": min(budget, 32768 if is_pro(model) else 24576), "includeThoughts": shown}, True
    raise RequestError("must be {type: enabled|disabled|adaptive}", "thinking.type")


def _output_format(payload: Mapping[str, Any], config: dict[str, Any]) -> None:
    output = payload.get("output_config")
    fmt = output.get("format") if isinstance(output, Mapping) else None
    if fmt is None:
        return
    if not isinstance(fmt, Mapping) or fmt.get("type") != "json_schema":
        raise RequestError("only {type: json_schema, schema} is supported", "output_config.format")
    config["responseMimeType"] = "application/json"
    if isinstance(fmt.get("schema"), Mapping):
        config["responseJsonSchema"] = dict(fmt["schema"])


def _model(payload: Mapping[str, Any], model_map: Sequence[tuple[str, str]]) -> tuple[str, str]:
    requested = payload.get("model")
    if not isinstance(requested, str) or not requested:
        raise RequestError("Field required", "model")
    return bare_model(resolve_model(requested.removeprefix("models/"), model_map)), requested


def _user_id(payload: Mapping[str, Any]) -> str | None:
    metadata = payload.get("metadata")
    user = metadata.get("user_id") if isinstance(metadata, Mapping) else None
    return user if isinstance(user, str) and user else None


def _core(payload: Any, model_map: Sequence[tuple[str, str]], fetched: Mapping[str, tuple[str, str]] | None,
          signatures: Mapping[str, str] | None) -> tuple[str, str, dict[str, Any]]:
    if not isinstance(payload, Mapping):
        raise RequestError("the request body must be a JSON object")
    model, requested = _model(payload, model_map)
    contents, system = translate_messages(payload.get("messages"), payload.get("system"), model=model,
                                          fetched=fetched, signatures=signatures)
    body: dict[str, Any] = {"contents": contents}
    if system is not None:
        body["systemInstruction"] = system
    declarations, native = translate_tools(payload.get("tools"))
    tools = ([{"functionDeclarations": declarations}] if declarations else []) + native
    if tools:
        body["tools"] = tools
    config = tool_config(payload.get("tool_choice"), [d["name"] for d in declarations])
    if config is not None:
        body["toolConfig"] = config
    return model, requested, body


def parse_messages_request(payload: Any, *, model_map: Sequence[tuple[str, str]] = DEFAULT_MODEL_MAP,
                           fetched: Mapping[str, tuple[str, str]] | None = None,
                           signatures: Mapping[str, str] | None = None) -> MessagesRequest:
    """Validate a Messages body and translate it (rules in this module and :mod:`.content`, :mod:`.tools`)."""
    model, requested, body = _core(payload, model_map, fetched, signatures)
    if payload.get("max_tokens") is None:
        raise RequestError("Field required", "max_tokens")
    generation: dict[str, Any] = {"maxOutputTokens": _integer(payload["max_tokens"], "max_tokens", 1)}
    if (t := _number(payload, "temperature", 1)) is not None:
        generation["temperature"] = t
    if (p := _number(payload, "top_p", 1)) is not None:
        generation["topP"] = p
    if payload.get("top_k") is not None and (k := _integer(payload["top_k"], "top_k", 0)) > 0:
        generation["topK"] = k
    if (stops := _stop_sequences(payload.get("stop_sequences"))) is not None:
        generation["stopSequences"] = stops
    _output_format(payload, generation)
    thinking, shown = _thinking(payload, model)
    if thinking:
        generation["thinkingConfig"] = thinking
    body["generationConfig"] = generation
    stream = payload.get("stream", False)
    if not isinstance(stream, bool):
        raise RequestError("must be a boolean", "stream")
    return MessagesRequest(model=model, requested_model=requested, body=body, stream=stream, thinking=shown,
                           user_id=_user_id(payload))


def count_tokens_body(payload: Any, *, model_map: Sequence[tuple[str, str]] = DEFAULT_MODEL_MAP,
                      signatures: Mapping[str, str] | None = None) -> tuple[str, str, dict[str, Any]]:
    """(Gemini model, requested model, countTokens body): system and tools are counted too."""
    model, requested, body = _core(payload, model_map, None, signatures)
    return model, requested, {"generateContentRequest": {"model": f"models/{model}", **body}}
