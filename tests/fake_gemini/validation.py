"""Request checks that make the fake reject what Gemini rejects, so translation bugs fail in tests.

Order follows Google's: JSON parsing first (unknown names, bytes fields), then field requirements, then the
model-specific rules. Field paths in messages use Google's snake_case form (``generation_config``,
``contents[1].parts[0]``). Each check returns an :data:`errors.ErrorReply` or None.
"""

from __future__ import annotations

import re
from typing import Any

from . import errors
from .answers import get, is_gemini3, snake

_BASE64_RE = re.compile(r"[A-Za-z0-9+/_-]*={0,2}")


def _with_snake(*names: str) -> frozenset[str]:
    return frozenset(names) | frozenset(snake(n) for n in names)


GENERATE_FIELDS = _with_snake(
    "contents",
    "systemInstruction",
    "tools",
    "toolConfig",
    "safetySettings",
    "generationConfig",
    "cachedContent",
    "serviceTier",
    "model",
)
GENERATION_CONFIG_FIELDS = _with_snake(
    "audioTimestamp",
    "audioTranscriptionConfig",
    "candidateCount",
    "enableAffectiveDialog",
    "enableEnhancedCivicAnswers",
    "frequencyPenalty",
    "imageConfig",
    "logprobs",
    "maxOutputTokens",
    "mediaResolution",
    "modelSelectionConfig",
    "presencePenalty",
    "responseFormat",
    "responseJsonSchema",
    "responseLogprobs",
    "responseMimeType",
    "responseModalities",
    "responseSchema",
    "routingConfig",
    "seed",
    "speechConfig",
    "stopSequences",
    "temperature",
    "thinkingConfig",
    "topK",
    "topP",
    "translationConfig",
) | {"_responseJsonSchema"}
THINKING_CONFIG_FIELDS = _with_snake("includeThoughts", "thinkingBudget", "thinkingLevel")
CONTENT_FIELDS = _with_snake("role", "parts")
PART_DATA_FIELDS = _with_snake(
    "text",
    "inlineData",
    "fileData",
    "functionCall",
    "functionResponse",
    "executableCode",
    "codeExecutionResult",
    "toolCall",
    "toolResponse",
)
PART_FIELDS = PART_DATA_FIELDS | _with_snake(
    "thought", "thoughtSignature", "videoMetadata", "mediaResolution", "partMetadata"
)
COUNT_TOKENS_FIELDS = _with_snake("contents", "generateContentRequest")
VALID_ROLES = (None, "", "user", "model", "function")
SKIP_SIGNATURE = "skip_thought_signature_validator"


def not_an_object() -> errors.ErrorReply:
    """A JSON body whose root is not an object."""
    return errors.invalid_json('Unknown name "": Root element must be a message.')


def _unknown(obj: Any, allowed: frozenset[str], at: str | None) -> errors.ErrorReply | None:
    if not isinstance(obj, dict):
        return None
    names = [k for k in obj if k not in allowed]
    return errors.unknown_fields(names, at) if names else None


def _contents_list(obj: Any) -> list[Any]:
    return obj if isinstance(obj, list) else []


def _check_unknown_names(body: dict[str, Any]) -> errors.ErrorReply | None:
    found = _unknown(body, GENERATE_FIELDS, None)
    if found:
        return found
    config = get(body, "generationConfig")
    found = _unknown(config, GENERATION_CONFIG_FIELDS, "generation_config")
    if found:
        return found
    found = _unknown(
        get(config, "thinkingConfig"), THINKING_CONFIG_FIELDS, "generation_config.thinking_config"
    )
    if found:
        return found
    containers: list[tuple[str, Any]] = [
        (f"contents[{i}]", c) for i, c in enumerate(_contents_list(get(body, "contents")))
    ]
    system = get(body, "systemInstruction")
    if system is not None:
        containers.append(("system_instruction", system))
    for path, content in containers:
        if not isinstance(content, dict):
            return errors.invalid_json(f"Invalid value at '{path}'.")
        found = _unknown(content, CONTENT_FIELDS, path)
        if found:
            return found
        for j, part in enumerate(_contents_list(get(content, "parts"))):
            if not isinstance(part, dict):
                return errors.invalid_json(f"Invalid value at '{path}.parts[{j}]'.")
            found = _unknown(part, PART_FIELDS, f"{path}.parts[{j}]")
            if found:
                return found
    return None


def _check_signatures_are_base64(body: dict[str, Any]) -> errors.ErrorReply | None:
    for i, content in enumerate(_contents_list(get(body, "contents"))):
        for j, part in enumerate(_contents_list(get(content, "parts"))):
            signature = get(part, "thoughtSignature")
            if signature is None:
                continue
            text = str(signature)
            if not _BASE64_RE.fullmatch(text) or len(text.rstrip("=")) % 4 == 1:
                path = f"contents[{i}].parts[{j}].thought_signature"
                message = f"Invalid value at '{path}' (TYPE_BYTES), Base64 decoding failed for \"{text}\""
                return errors.invalid_argument(message, [{"field": path, "description": message}])
    return None


def _check_contents(body: dict[str, Any]) -> errors.ErrorReply | None:
    contents = get(body, "contents")
    if not contents:
        return errors.simple(
            400, "INVALID_ARGUMENT", "* GenerateContentRequest.contents: contents is not specified\n"
        )
    if not isinstance(contents, list):
        return errors.invalid_json("Invalid value at 'contents'.")
    for i, content in enumerate(contents):
        if not isinstance(content, dict):  # Google: "Invalid value at 'contents[0]' (...Content)"
            return errors.invalid_json(f"Invalid value at 'contents[{i}]'.")
        if content.get("role") not in VALID_ROLES:
            return errors.simple(400, "INVALID_ARGUMENT", "Please use a valid role: user, model.")
        parts = get(content, "parts")
        if parts and not isinstance(parts, list):
            return errors.invalid_json(f"Invalid value at 'contents[{i}].parts'.")
        if not parts:
            return errors.simple(
                400,
                "INVALID_ARGUMENT",
                f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty.\n",
            )
        for j, part in enumerate(parts):
            if not isinstance(part, dict):
                return errors.invalid_json(f"Invalid value at 'contents[{i}].parts[{j}]'.")
            if not any(name in part for name in PART_DATA_FIELDS):
                return errors.simple(
                    400,
                    "INVALID_ARGUMENT",
                    f"* GenerateContentRequest.contents[{i}].parts[{j}].data: required oneof field 'data' "
                    "must have one initialized field\n",
                )
    return None


def _check_thinking(body: dict[str, Any]) -> errors.ErrorReply | None:
    thinking = get(get(body, "generationConfig") or {}, "thinkingConfig") or {}
    if get(thinking, "thinkingBudget") is not None and get(thinking, "thinkingLevel") is not None:
        return errors.thinking_budget_and_level()
    return None


def current_turn_start(contents: list[dict[str, Any]]) -> int:
    """Index of the user turn that opened the current turn: the last user content with a text part."""
    for i in range(len(contents) - 1, -1, -1):
        content = contents[i]
        if content.get("role") in (None, "", "user") and any(
            isinstance(p, dict) and "text" in p for p in get(content, "parts") or []
        ):
            return i
    return 0


def _check_gemini3_signatures(model: str, body: dict[str, Any]) -> errors.ErrorReply | None:
    """Gemini 3 rejects a current-turn step whose first functionCall lost its thoughtSignature."""
    if not is_gemini3(model):
        return None
    contents = get(body, "contents")
    for i in range(current_turn_start(contents) + 1, len(contents)):
        content = contents[i]
        if content.get("role") != "model":
            continue
        for part in get(content, "parts") or []:
            call = get(part, "functionCall")
            if not isinstance(call, dict):
                continue
            if not get(part, "thoughtSignature"):
                return errors.missing_thought_signature(str(call.get("name", "")), i + 1)
            break  # only the first call of a step carries the signature
    return None


_OBJECT_FIELDS = ("generationConfig", "systemInstruction", "toolConfig")
_LIST_FIELDS = ("tools", "safetySettings")


def _check_types(body: dict[str, Any]) -> errors.ErrorReply | None:
    """A message field of the wrong JSON type: Google's "Invalid value at 'generation_config'" 400."""
    for name in _OBJECT_FIELDS:
        value = get(body, name)
        if value is not None and not isinstance(value, dict):
            return errors.invalid_json(f"Invalid value at '{snake(name)}'.")
    for name in _LIST_FIELDS:
        value = get(body, name)
        if value is not None and not (isinstance(value, list) and all(isinstance(v, dict) for v in value)):
            return errors.invalid_json(f"Invalid value at '{snake(name)}'.")
    thinking = get(get(body, "generationConfig"), "thinkingConfig")
    if thinking is not None and not isinstance(thinking, dict):
        return errors.invalid_json("Invalid value at 'generation_config.thinking_config'.")
    return None


def validate_generate(model: str, body: Any) -> errors.ErrorReply | None:
    """All checks for generateContent/streamGenerateContent, first failure wins."""
    if not isinstance(body, dict):
        return not_an_object()
    for check in (_check_types, _check_unknown_names, _check_signatures_are_base64, _check_contents,
                  _check_thinking):
        found = check(body)
        if found:
            return found
    return _check_gemini3_signatures(model, body)


def validate_count_tokens(body: Any) -> errors.ErrorReply | None:
    """countTokens takes ``contents`` or a whole ``generateContentRequest``."""
    if not isinstance(body, dict):
        return not_an_object()
    contents = get(body, "contents")
    if contents is not None and not isinstance(contents, (list, dict)):
        return errors.invalid_json("Invalid value at 'contents'.")
    for i, content in enumerate(contents if isinstance(contents, list) else [contents] if contents else []):
        parts = get(content, "parts") if isinstance(content, dict) else None
        if not isinstance(content, dict) or (parts is not None and not isinstance(parts, list)):
            return errors.invalid_json(f"Invalid value at 'contents[{i}]'.")
    return _unknown(body, COUNT_TOKENS_FIELDS, None)


def validate_embed(body: Any, batch: bool) -> errors.ErrorReply | None:
    """Embedding requests need content (single) or a non-empty ``requests`` list (batch)."""
    if not isinstance(body, dict):
        return not_an_object()
    if batch:
        requests = body.get("requests")
        if not isinstance(requests, list) or not requests:
            return errors.simple(
                400, "INVALID_ARGUMENT", "* BatchEmbedContentsRequest.requests: requests is not specified\n"
            )
        for i, request in enumerate(requests):
            if not isinstance(request, dict) or not get(request, "content"):
                return errors.simple(
                    400,
                    "INVALID_ARGUMENT",
                    f"* BatchEmbedContentsRequest.requests[{i}].content: content is not specified\n",
                )
        return None
    if not get(body, "content"):
        return errors.simple(
            400, "INVALID_ARGUMENT", "* EmbedContentRequest.content: content is not specified\n"
        )
    return None
