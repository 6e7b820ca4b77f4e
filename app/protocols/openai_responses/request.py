"""A Responses API create body -> the Gemini call (model, GenerateContentRequest, stream flag) + what to echo.

``history`` is the earlier conversation the service resolved from ``previous_response_id`` (its input and
output items); ``instructions`` are never inherited from it, as on OpenAI. Fields with no Gemini counterpart
(``metadata``, ``user``, ``prompt_cache_key``, ``truncation``, ``service_tier`` ...) are echoed back or used as
hints, never forwarded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from app.protocols.openai_chat.errors import RequestError
from app.protocols.openai_chat.families import bare_model, is_gemini3, is_gemini25
from app.protocols.openai_chat.generation import thinking_for_effort
from app.protocols.openai_responses.content import Fetched
from app.protocols.openai_responses.items import translate_items
from app.protocols.openai_responses.tools import ToolSet, tool_config, translate_tools
from app.protocols.openai_chat.generation import bounded_number

__all__ = ["ResponsesRequest", "parse_responses_request"]

_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
_SUMMARIES = ("auto", "concise", "detailed")


@dataclass
class ResponsesRequest:
    model: str                      # bare Gemini id
    requested_model: str            # as sent, echoed in the response
    body: dict[str, Any]            # GenerateContentRequest
    stream: bool
    store: bool
    tools: ToolSet
    echo: dict[str, Any]            # request parameters the Response object repeats
    input_items: list[Any]          # this request's input, normalised to items (for the store)
    previous_response_id: str | None = None
    compaction_trigger: bool = False
    user: str | None = None
    affinity: str | None = None     # prompt_cache_key or user: a session hint for the pool
    summaries: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def _flag(payload: Mapping[str, Any], key: str, default: bool) -> bool:
    value = payload.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise RequestError(f"{key} must be a boolean", key)
    return value


def _string(payload: Mapping[str, Any], key: str) -> str | None:
    value = payload.get(key)
    if value is not None and not isinstance(value, str):
        raise RequestError(f"{key} must be a string", key)
    return value


def _text_format(text: Any, config: dict[str, Any]) -> None:
    if text is None:
        return
    if not isinstance(text, Mapping):
        raise RequestError("text must be an object", "text")
    fmt = text.get("format")
    if fmt is None:
        return
    if not isinstance(fmt, Mapping):
        raise RequestError("text.format must be an object", "text.format")
    kind = fmt.get("type")
    if kind == "text":
        return
    if kind == "json_object":
        config["responseMimeType"] = "application/json"
    elif kind == "json_schema":
        schema = fmt.get("schema")
        if not isinstance(schema, Mapping):
            raise RequestError("text.format.schema must be a JSON Schema object", "text.format.schema")
        config["responseMimeType"] = "application/json"
        config["responseJsonSchema"] = {k: v for k, v in schema.items() if k != "$schema"}
    else:
        raise RequestError(f"unsupported text.format type {kind!r}: use text, json_object or json_schema",
                           "text.format.type")


def _reasoning(value: Any, model: str, config: dict[str, Any]) -> bool:
    """thinkingConfig from ``reasoning``; True when thought summaries were asked for."""
    if value is None:
        return False
    if not isinstance(value, Mapping):
        raise RequestError("reasoning must be an object", "reasoning")
    effort, summary = value.get("effort"), value.get("summary", value.get("generate_summary"))
    thinking: dict[str, Any] = {}
    if effort is not None:
        if effort not in _EFFORTS:
            raise RequestError(f"reasoning.effort must be one of {', '.join(_EFFORTS)}", "reasoning.effort")
        try:
            thinking = thinking_for_effort(model, "high" if effort == "max" else effort) or {}
        except RequestError as exc:
            raise RequestError(exc.message, "reasoning.effort") from None
    if summary is not None and summary not in _SUMMARIES:
        raise RequestError(f"reasoning.summary must be one of {', '.join(_SUMMARIES)}", "reasoning.summary")
    thinks = is_gemini3(model) or is_gemini25(model)
    summaries = summary is not None and thinks and thinking.get("thinkingBudget") != 0
    if summaries:
        thinking["includeThoughts"] = True
    if thinking:
        config["thinkingConfig"] = thinking
    return summaries


def _input_items(value: Any) -> list[Any]:
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": value}]}]
    return list(value) if isinstance(value, list) else []


def parse_responses_request(payload: Any, *, history: list[Any] | None = None, fetched: Fetched | None = None,
                            signatures: Mapping[str, str] | None = None) -> ResponsesRequest:
    if not isinstance(payload, Mapping):
        raise RequestError("the request body must be a JSON object")
    model = bare_model(payload.get("model"))
    requested: str = payload["model"]
    stream = _flag(payload, "stream", False)
    store = _flag(payload, "store", True)
    instructions = _string(payload, "instructions")
    user = _string(payload, "user")
    cache_key = _string(payload, "prompt_cache_key")
    previous = _string(payload, "previous_response_id")
    if previous is not None and payload.get("conversation") is not None:
        raise RequestError("previous_response_id and conversation cannot be used together", "conversation")
    if payload.get("conversation") is not None:
        raise RequestError("conversations are not supported by this gateway: use previous_response_id or send "
                           "the history in input", "conversation")
    raw_input = payload.get("input")
    if raw_input is None:
        raise RequestError("input is required", "input")
    own = _input_items(raw_input)
    if not isinstance(raw_input, (str, list)):
        raise RequestError("input must be a string or an array of input items", "input")

    translated = translate_items([*(history or []), *own], signatures=signatures, fetched=fetched,
                                 gemini3=is_gemini3(model))
    if not translated.contents:
        translated.contents.append({"role": "user", "parts": [{"text": " "}]})
    body: dict[str, Any] = {"contents": translated.contents}
    system = ([{"text": instructions}] if instructions else []) + translated.system
    if system:
        body["systemInstruction"] = {"parts": system}

    tools = translate_tools(payload.get("tools"))
    if gemini_tools := tools.gemini_tools():
        body["tools"] = gemini_tools
    if (config := tool_config(payload.get("tool_choice"), tools)) is not None:
        body["toolConfig"] = config

    generation: dict[str, Any] = {}
    if (value := bounded_number(payload, "temperature", 0, 2)) is not None:
        generation["temperature"] = value
    if (value := bounded_number(payload, "top_p", 0, 1)) is not None:
        generation["topP"] = value
    limit = payload.get("max_output_tokens")
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise RequestError("max_output_tokens must be an integer >= 1", "max_output_tokens")
        generation["maxOutputTokens"] = limit
    _text_format(payload.get("text"), generation)
    summaries = _reasoning(payload.get("reasoning"), model, generation)
    if generation:
        body["generationConfig"] = generation

    metadata = payload.get("metadata")
    if metadata is not None and not isinstance(metadata, Mapping):
        raise RequestError("metadata must be an object of string pairs", "metadata")
    echo = {
        "instructions": instructions, "max_output_tokens": limit, "metadata": dict(metadata or {}),
        "parallel_tool_calls": payload.get("parallel_tool_calls", True), "previous_response_id": previous,
        "prompt_cache_key": cache_key, "reasoning": _echo_reasoning(payload.get("reasoning")),
        "store": store, "temperature": payload.get("temperature", 1.0),
        "text": payload.get("text") or {"format": {"type": "text"}}, "tool_choice": payload.get("tool_choice", "auto"),
        "tools": list(payload.get("tools") or []), "top_p": payload.get("top_p", 1.0),
        "truncation": payload.get("truncation", "disabled"), "user": user,
        "service_tier": payload.get("service_tier", "default"),
        "safety_identifier": payload.get("safety_identifier"),
    }
    return ResponsesRequest(model=model, requested_model=requested, body=body, stream=stream, store=store,
                            tools=tools, echo=echo, input_items=own, previous_response_id=previous,
                            compaction_trigger=translated.compaction_trigger, user=user,
                            affinity=cache_key or user, summaries=summaries)


def _echo_reasoning(value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return {"effort": value.get("effort"), "summary": value.get("summary")}
    return {"effort": None, "summary": None}
