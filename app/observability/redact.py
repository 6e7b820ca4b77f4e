"""Strip message content from Gemini request/response JSON while keeping its shape and its numbers.

With ``ANALYTICS_REDACT_CONTENT`` the operator still wants to see *that* a user sent two turns with an image
and got a function call back, which model answered, the finish reason and token usage - just not what was
said. So the walk keeps every container, role, mime type, function name and usage counter, and replaces only
the payload of each part (text, inline data, file URIs, function arguments and results, code and its output).

Pure functions that copy only the containers they change: the input may be the very dict the gateway sent
upstream, and it must come out untouched. Both REST spellings (camelCase and snake_case) are handled because
native passthrough clients send either.
"""

from __future__ import annotations

from typing import Any

REDACTED = "[redacted]"

# part field -> the fields of it that carry content, and what replaces them.
_NESTED: dict[str, dict[str, Any]] = {
    "inlineData": {"data": REDACTED}, "inline_data": {"data": REDACTED},
    "fileData": {"fileUri": REDACTED, "file_uri": REDACTED},
    "file_data": {"fileUri": REDACTED, "file_uri": REDACTED},
    "functionCall": {"args": {}, "partialArgs": []}, "function_call": {"args": {}, "partial_args": []},
    "functionResponse": {"response": {}, "parts": []}, "function_response": {"response": {}, "parts": []},
    "executableCode": {"code": REDACTED}, "executable_code": {"code": REDACTED},
    "codeExecutionResult": {"output": REDACTED}, "code_execution_result": {"output": REDACTED},
}
# Candidate fields that quote the conversation or retrieved pages (search queries, grounding snippets).
_CANDIDATE_DROP = frozenset({"groundingMetadata", "grounding_metadata", "urlContextMetadata",
                             "url_context_metadata"})
_SYSTEM_KEYS = ("systemInstruction", "system_instruction")


def redact_part(part: Any) -> Any:
    if not isinstance(part, dict):
        return REDACTED if isinstance(part, str) else part
    out: dict[str, Any] = {}
    for key, value in part.items():
        if key == "text" and isinstance(value, str):
            out[key] = REDACTED
        elif key in _NESTED and isinstance(value, dict):
            replace = _NESTED[key]
            out[key] = {k: (replace[k] if k in replace else v) for k, v in value.items()}
        else:
            out[key] = value
    return out


def redact_content(content: Any) -> Any:
    """A ``Content`` (role + parts); a bare string (accepted by some SDK shortcuts) is redacted whole."""
    if isinstance(content, str):
        return REDACTED
    if not isinstance(content, dict):
        return content
    parts = content.get("parts")
    if not isinstance(parts, list):
        return content
    return {**content, "parts": [redact_part(p) for p in parts]}


def redact_request(request: dict[str, Any]) -> dict[str, Any]:
    out = dict(request)
    contents = out.get("contents")
    if isinstance(contents, list):
        out["contents"] = [redact_content(c) for c in contents]
    elif contents is not None:
        out["contents"] = redact_content(contents)
    for key in _SYSTEM_KEYS:
        if key in out:
            out[key] = redact_content(out[key])
    return out


def redact_response(response: dict[str, Any]) -> dict[str, Any]:
    out = dict(response)
    candidates = out.get("candidates")
    if isinstance(candidates, list):
        out["candidates"] = [_redact_candidate(c) for c in candidates]
    return out


def _redact_candidate(candidate: Any) -> Any:
    if not isinstance(candidate, dict):
        return candidate
    out = {k: v for k, v in candidate.items() if k not in _CANDIDATE_DROP}
    if "content" in out:
        out["content"] = redact_content(out["content"])
    return out
