"""Google error bodies, built from the recorded/reconstructed fixtures so their wording and details are real.

Each builder returns ``(http_status, body_dict)``; the server decides the framing (plain JSON, or wrapped in a
one-element array on the JSON-array stream). Shapes: reference ``gemini-api.md`` §2.
"""

from __future__ import annotations

import copy
import re
from functools import cache
from typing import Any

from . import fixtures

ErrorReply = tuple[int, dict[str, Any]]

DEFAULT_RPM_RETRY_DELAY = "58s"  # from reconstructed/429__free-tier-requests-per-minute.json


@cache
def _recorded(relative: str) -> dict[str, Any]:
    body = fixtures.load_json(relative)
    return body[0] if isinstance(body, list) else body


def _copy(relative: str) -> dict[str, Any]:
    return copy.deepcopy(_recorded(relative))


def _reply(body: dict[str, Any]) -> ErrorReply:
    return int(body["error"]["code"]), body


def simple(code: int, status: str, message: str) -> ErrorReply:
    """An error with no details, the commonest shape."""
    return code, {"error": {"code": code, "message": message, "status": status}}


def api_key_invalid() -> ErrorReply:
    """400 INVALID_ARGUMENT with ErrorInfo.reason API_KEY_INVALID: a bad key is 400, not 401."""
    return _reply(_copy("reconstructed/400__API_KEY_INVALID__native.json"))


def unregistered_caller() -> ErrorReply:
    """403 when no key was sent at all."""
    return _reply(_copy("reconstructed/403__no-api-key-unregistered-caller.json"))


def bearer_rejected() -> ErrorReply:
    """401 when an API key is sent as ``Authorization: Bearer`` on a native path."""
    return _reply(_copy("reconstructed/401__bearer-api-key-on-native-endpoint.json"))


def service_disabled(project: str = "000000000000") -> ErrorReply:
    """403 PERMISSION_DENIED / SERVICE_DISABLED: the key's project has the API turned off.

    No fixture holds this body; the wording and ErrorInfo metadata follow public reports (google-gemini
    deprecated-generative-ai-python#10, gemini-cli#1343). The project number is a placeholder.
    """
    url = f"https://console.developers.google.com/apis/api/generativelanguage.googleapis.com/overview?project={project}"
    message = (
        f"Generative Language API has not been used in project {project} before or it is disabled. "
        f"Enable it by visiting {url} then retry. If you enabled this API recently, wait a few minutes for "
        "the action to propagate to our systems and retry."
    )
    return 403, {
        "error": {
            "code": 403,
            "message": message,
            "status": "PERMISSION_DENIED",
            "details": [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "SERVICE_DISABLED",
                    "domain": "googleapis.com",
                    "metadata": {
                        "serviceTitle": "Generative Language API",
                        "consumer": f"projects/{project}",
                        "containerInfo": project,
                        "service": "generativelanguage.googleapis.com",
                        "activationUrl": url,
                    },
                },
                {
                    "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                    "locale": "en-US",
                    "message": message,
                },
                {
                    "@type": "type.googleapis.com/google.rpc.Help",
                    "links": [{"description": "Google developers console API activation", "url": url}],
                },
            ],
        }
    }


def _quota(relative: str, model: str, retry_delay: str | None) -> ErrorReply:
    """A 429 from a recorded body, re-targeted at ``model`` and optionally at another ``retryDelay``."""
    body = _copy(relative)
    error = body["error"]
    old_model = ""
    for detail in error.get("details", []):
        if detail.get("@type", "").endswith("QuotaFailure"):
            for violation in detail.get("violations", []):
                dims = violation.setdefault("quotaDimensions", {})
                old_model = dims.get("model", old_model)
                dims["model"] = model
        if retry_delay is not None and detail.get("@type", "").endswith("RetryInfo"):
            detail["retryDelay"] = retry_delay
    if old_model:
        error["message"] = error["message"].replace(f"model: {old_model}", f"model: {model}")
    if retry_delay is not None:
        error["message"] = re.sub(
            r"Please retry in [0-9.]+s\.", f"Please retry in {retry_delay}.", error["message"]
        )
    return _reply(body)


def rate_limited_per_minute(model: str, retry_delay: str | None = None) -> ErrorReply:
    """429 with quotaId ``...PerMinute...`` and RetryInfo (delay from the fixture unless overridden)."""
    return _quota("reconstructed/429__free-tier-requests-per-minute.json", model, retry_delay)


def quota_exhausted_per_day(model: str, retry_delay: str | None = None) -> ErrorReply:
    """429 with quotaId ``...PerDay...``; it still carries a short RetryInfo, as the real one does."""
    return _quota("reconstructed/429__free-tier-requests-per-day.json", model, retry_delay)


def unavailable() -> ErrorReply:
    """503 UNAVAILABLE, current "high demand" wording."""
    return _reply(_copy("reconstructed/503__UNAVAILABLE__high-demand.json"))


def internal() -> ErrorReply:
    """500 INTERNAL."""
    return _reply(_copy("reconstructed/500__INTERNAL.json"))


def thinking_budget_and_level() -> ErrorReply:
    """400 when thinkingConfig sets both thinkingBudget and thinkingLevel."""
    return _reply(_copy("reconstructed/400__thinking-budget-and-level-both-set__native.json"))


def model_not_found(model: str, method: str, version: str = "v1beta") -> ErrorReply:
    """404 for an unknown model or one that does not support ``method``; wording as recorded per method.

    generateContent answers name ``ModelService.ListModels`` in the newest recording, countTokens and
    embedContent plain ``ListModels`` (errors/404__*). Streaming reports ``generateContent``; batch embedding
    reports ``embedContent``. The models.get wording is not recorded anywhere; it reuses the family pattern.
    """
    lister = "ModelService.ListModels" if method == "generateContent" else "ListModels"
    message = (
        f"models/{model} is not found for API version {version}, or is not supported for {method}. "
        f"Call {lister} to see the list of available models and their supported methods."
    )
    return simple(404, "NOT_FOUND", message)


def invalid_argument(message: str, violations: list[dict[str, str]] | None = None) -> ErrorReply:
    """400 INVALID_ARGUMENT, with a google.rpc.BadRequest detail when there are field violations."""
    error: dict[str, Any] = {"code": 400, "message": message, "status": "INVALID_ARGUMENT"}
    if violations:
        error["details"] = [
            {"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": violations}
        ]
    return 400, {"error": error}


def unknown_fields(names: list[str], at: str | None = None) -> ErrorReply:
    """400 for unknown JSON fields: the reconstructed compat body, unwrapped from its array, names swapped."""
    template = _recorded("reconstructed/400__unknown-field__openai-compat-array-wrapped.json")
    prefix, suffix = template["error"]["message"].split('"frequency_penalty"', 1)
    where = f" at '{at}'" if at else ""
    texts = [f'{prefix}"{name}"{where}{suffix}' for name in names]
    violations = [({"field": at} if at else {}) | {"description": text} for text in texts]
    return invalid_argument("\n".join(texts), violations)


def invalid_json(detail: str) -> ErrorReply:
    """400 for a body that is not JSON at all."""
    message = f"Invalid JSON payload received. {detail}"
    return invalid_argument(message, [{"description": message}])


def missing_thought_signature(function_name: str, position: int) -> ErrorReply:
    """Gemini 3: a current-turn functionCall replayed without its thoughtSignature (reference §1.6)."""
    return simple(
        400,
        "INVALID_ARGUMENT",
        "Function call is missing a thought_signature in functionCall parts. This is required for tools to "
        "work correctly, and missing thought_signature may lead to degraded model performance. "
        f"Additional data, function call `default_api:{function_name}` , position {position}. "
        "Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures for more details.",
    )


def not_found_html(path: str) -> bytes:
    """Google's front end answers unrouted paths with a small HTML page, not a JSON error."""
    return (
        "<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n  <title>Error 404 (Not Found)!!1</title>\n"
        f"  <p><b>404.</b> <ins>That\u2019s an error.</ins>\n  <p>The requested URL <code>{path}</code> "
        "was not found on this server.  <ins>That\u2019s all we know.</ins>\n"
    ).encode()
