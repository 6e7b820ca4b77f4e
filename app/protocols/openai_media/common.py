"""Pieces every media translation shares: Gemini candidates' inline parts, usage, refusals."""

from __future__ import annotations

from typing import Any

from app.errors import InvalidRequest, UpstreamUnavailable
from app.gemini.parts import Media, candidate_parts, output_media

#: Finish reasons meaning the model refused on content grounds (OpenAI answers these 400
#: ``content_policy_violation``).
REFUSALS = frozenset({"SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "RECITATION", "IMAGE_SAFETY",
                      "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION", "IMAGE_OTHER", "NO_IMAGE"})


def parts_of(response: dict[str, Any]) -> list[dict[str, Any]]:
    """Every part of the first candidate; a refusal (blocked prompt or a content finish reason) raises."""
    feedback = response.get("promptFeedback") or {}
    if feedback.get("blockReason"):
        raise InvalidRequest(f"the request was refused by the model's safety system ({feedback['blockReason']})",
                             param="prompt", code="content_policy_violation")
    candidates = response.get("candidates") or []
    if not candidates or not isinstance(candidates[0], dict):
        raise UpstreamUnavailable("the model returned no candidate")
    candidate = candidates[0]
    reason = candidate.get("finishReason")
    parts = [p for p in candidate_parts(candidate) if isinstance(p, dict)]
    if reason in REFUSALS and not any("inlineData" in p for p in parts):
        raise InvalidRequest(f"the request was refused by the model ({reason})", param="prompt",
                             code="content_policy_violation")
    return parts


def inline_parts(parts: list[dict[str, Any]], prefix: str) -> list[Media]:
    """The output media whose mime type starts with ``prefix`` (thought drafts left out)."""
    return [m for m in output_media(parts) if m.mime.startswith(prefix)]


def usage_of(response: dict[str, Any]) -> tuple[int, int]:
    """(input tokens, output tokens incl. thinking) from Gemini's usageMetadata."""
    meta = response.get("usageMetadata") or {}
    prompt = int(meta.get("promptTokenCount") or 0)
    output = int(meta.get("candidatesTokenCount") or 0) + int(meta.get("thoughtsTokenCount") or 0)
    return prompt, output


def string_field(form: dict[str, Any], name: str, *, required: bool = False, limit: int = 32_000) -> str | None:
    value = form.get(name)
    if value is None or value == "":
        if required:
            raise InvalidRequest(f"{name} is required", param=name)
        return None
    if not isinstance(value, str):
        raise InvalidRequest(f"{name} must be a string", param=name)
    if len(value) > limit:
        raise InvalidRequest(f"{name} is longer than {limit} characters", param=name)
    return value


def number_field(form: dict[str, Any], name: str, low: float, high: float) -> float | None:
    """A number within [low, high]; form fields arrive as strings."""
    value = form.get(name)
    if value is None or value == "":
        return None
    try:
        number = float(value) if isinstance(value, (str, int, float)) and not isinstance(value, bool) else None
    except ValueError:
        number = None
    if number is None or not low <= number <= high:
        raise InvalidRequest(f"{name} must be a number from {low:g} to {high:g}", param=name)
    return number
