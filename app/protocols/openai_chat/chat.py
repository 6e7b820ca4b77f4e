"""OpenAI ``POST /v1/chat/completions`` body -> a validated Gemini ``GenerateContentRequest``.

Pure: no I/O, no framework types. What translation cannot do itself is prepared by the service and passed in:
fetched image bytes (:func:`media_urls` says which URLs to fetch) and remembered thought signatures
(:func:`tool_call_ids` says which to look up). Every refusal is a :class:`RequestError` naming the field.

Fields Gemini cannot honour are dropped on purpose (:data:`DROPPED_FIELDS`); any other unknown field is
ignored too (and reported in ``ChatRequest.ignored_fields`` for logging), never a crash and never forwarded:
Gemini answers 400 to unknown fields.

Server-side tools: a model named ``<base>-search`` whose base is in ``search_models`` is served by the base
model with a ``googleSearch`` tool (the client chose it explicitly, so it is added even next to functions).
``code_execution=True`` adds ``codeExecution`` only when the request declares no functions: combining built-in
tools with function calling is not accepted by every model, and the client's own tools take precedence.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from app.protocols.openai_chat.errors import RequestError, bounded_int
from app.protocols.openai_chat.families import bare_model
from app.protocols.openai_chat.generation import generation_config, google_extras
from app.protocols.openai_chat.messages import translate_messages
from app.protocols.openai_chat.parts import media_urls
from app.protocols.openai_chat.tools import function_declarations, tool_config

__all__ = ["DROPPED_FIELDS", "KNOWN_FIELDS", "ChatRequest", "media_urls", "parse_chat_request",
           "tool_call_ids"]

SEARCH_SUFFIX = "-search"

# OpenAI fields with no Gemini counterpart, dropped on purpose (the README lists them). ``user`` is kept on
# ChatRequest for analytics but never sent upstream.
DROPPED_FIELDS: tuple[str, ...] = (
    "user", "store", "metadata", "service_tier", "prediction", "audio", "logit_bias", "parallel_tool_calls",
    "web_search_options", "safety_identifier", "prompt_cache_key", "prompt_cache_retention", "verbosity",
)

# Fields this module translates.
KNOWN_FIELDS: frozenset[str] = frozenset({
    "model", "messages", "stream", "stream_options", "n", "temperature", "top_p", "top_k", "max_tokens",
    "max_completion_tokens", "stop", "seed", "presence_penalty", "frequency_penalty", "logprobs",
    "top_logprobs", "response_format", "modalities", "reasoning_effort", "tools", "tool_choice", "functions",
    "function_call", "extra_body", "google",
})


@dataclass
class ChatRequest:
    """A translated chat request: where to send it, what to send, and how to answer."""

    model: str                 # upstream Gemini id: bare, no ``models/``, no ``-search``
    requested_model: str       # exactly as the client sent it, echoed back in responses
    body: dict[str, Any]       # the Gemini GenerateContentRequest
    stream: bool
    include_usage: bool
    n: int
    user: str | None
    ignored_fields: tuple[str, ...] = field(default=())  # unknown top-level fields, for logs only


def _upstream_model(requested: str, search_models: Collection[str]) -> tuple[str, bool]:
    """(model to call, whether Google Search grounding was asked for through the ``-search`` suffix)."""
    if requested.endswith(SEARCH_SUFFIX):
        base = requested[: -len(SEARCH_SUFFIX)]
        if base in search_models:
            return base, True
    return requested, False


def _flag(payload: Mapping[str, Any], key: str) -> bool:
    value = payload.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise RequestError(f"{key} must be a boolean", key)
    return value


def _include_usage(payload: Mapping[str, Any]) -> bool:
    options = payload.get("stream_options")
    if options is None:
        return False
    if not isinstance(options, Mapping):
        raise RequestError("stream_options must be an object", "stream_options")
    value = options.get("include_usage")
    if value is not None and not isinstance(value, bool):
        raise RequestError("stream_options.include_usage must be a boolean", "stream_options.include_usage")
    return bool(value)


def _n(payload: Mapping[str, Any]) -> int:
    value = payload.get("n")
    if value is None:
        return 1
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise RequestError("n must be an integer >= 1", "n")
    return bounded_int(value, "n")


def parse_chat_request(payload: Any, *, search_models: Collection[str] = (), code_execution: bool = False,
                       fetched_media: Mapping[str, tuple[str, str]] | None = None,
                       signatures: Mapping[str, str] | None = None) -> ChatRequest:
    """Validate an OpenAI chat completion body and translate it (rules in :mod:`app.protocols.openai_chat.messages`,
    :mod:`app.protocols.openai_chat.parts`, :mod:`app.protocols.openai_chat.tools`, :mod:`app.protocols.openai_chat.generation`)."""
    if not isinstance(payload, Mapping):
        raise RequestError("the request body must be a JSON object")
    model, search = _upstream_model(bare_model(payload.get("model")), search_models)
    requested: str = payload["model"]  # validated by bare_model
    stream = _flag(payload, "stream")
    n = _n(payload)
    user = payload.get("user")
    if user is not None and not isinstance(user, str):
        raise RequestError("user must be a string", "user")

    contents, system = translate_messages(payload.get("messages"), model=model, fetched_media=fetched_media,
                                          signatures=signatures)
    body: dict[str, Any] = {"contents": contents}
    if system is not None:
        body["systemInstruction"] = system

    declarations, native = function_declarations(payload)
    tools: list[dict[str, Any]] = []
    if declarations:
        tools.append({"functionDeclarations": declarations})
    tools.extend(native)
    present = {key for tool in tools for key in tool}
    if search and "googleSearch" not in present:
        tools.append({"googleSearch": {}})
    if code_execution and not declarations and "codeExecution" not in present:
        tools.append({"codeExecution": {}})
    if tools:
        body["tools"] = tools
    config = tool_config(payload, [d["name"] for d in declarations])
    if config is not None:
        body["toolConfig"] = config

    generation = generation_config(payload, n)
    google_extras(payload, model, generation, body)
    if generation:
        body["generationConfig"] = generation

    ignored = tuple(k for k in payload if k not in KNOWN_FIELDS and k not in DROPPED_FIELDS)
    return ChatRequest(model=model, requested_model=requested, body=body, stream=stream,
                       include_usage=stream and _include_usage(payload), n=n, user=user,
                       ignored_fields=ignored)


def tool_call_ids(payload: Any) -> list[str]:
    """Ids of every assistant tool call in ``payload`` (so the service can fetch remembered signatures).

    Never raises; ids that already carry ``extra_content.google.thought_signature`` are still listed (cheap,
    and the parser prefers the echoed signature anyway).
    """
    if not isinstance(payload, Mapping) or not isinstance(payload.get("messages"), list):
        return []
    ids: list[str] = []
    for message in payload["messages"]:
        if not isinstance(message, Mapping) or message.get("role") != "assistant":
            continue
        calls = message.get("tool_calls")
        if not isinstance(calls, list):
            continue
        for call in calls:
            call_id = call.get("id") if isinstance(call, Mapping) else None
            if isinstance(call_id, str) and call_id:
                ids.append(call_id)
    return ids
