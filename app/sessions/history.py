"""Pure functions over a conversation: the request for the next turn, the reply read from Gemini's answer, and
the history cap. No I/O, so a recorded Gemini response is a complete test.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.gemini.parts import answer_text

__all__ = ["ModelReply", "user_turn", "build_request", "read_reply", "append_exchange"]


def user_turn(message: str) -> dict[str, Any]:
    return {"role": "user", "parts": [{"text": message}]}


def build_request(history: list[dict[str, Any]], message: str,
                  generation_config: dict[str, Any]) -> dict[str, Any]:
    """The whole conversation so far plus the new user turn: Gemini is stateless, so every turn resends it."""
    request: dict[str, Any] = {"contents": [*history, user_turn(message)]}
    if generation_config:
        request["generationConfig"] = generation_config
    return request


@dataclass(frozen=True, slots=True)
class ModelReply:
    """What one 200 answer means for the conversation.

    ``turn`` is the model's content to keep in the history (``None`` when the answer has none, e.g. a blocked
    prompt: then the turn failed and ``problem`` says why); ``text`` is the visible text for the client.
    """

    turn: dict[str, Any] | None
    text: str
    problem: str | None = None


def read_reply(response: object) -> ModelReply:
    """Read the first candidate. The content is kept whole (thought signatures included), because Gemini asks
    for the model's turn back unchanged; thought summaries are kept out of the visible text."""
    if not isinstance(response, dict):
        return ModelReply(None, "", "the model's answer is not a JSON object")
    candidates = response.get("candidates")
    if not isinstance(candidates, list) or not candidates or not isinstance(candidates[0], dict):
        feedback = response.get("promptFeedback")
        reason = feedback.get("blockReason") if isinstance(feedback, dict) else None
        why = f" (blockReason: {reason})" if reason else ""
        return ModelReply(None, "", f"the model returned no answer{why}")
    candidate = candidates[0]
    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    if not isinstance(content, dict) or not isinstance(parts, list) or not parts:
        reason = candidate.get("finishReason")
        why = f" (finishReason: {reason})" if reason else ""
        return ModelReply(None, "", f"the model returned an empty answer{why}")
    text = answer_text(parts)
    return ModelReply({**content, "role": "model"}, text)


def append_exchange(history: list[dict[str, Any]], user: dict[str, Any], model: dict[str, Any],
                    max_turns: int) -> list[dict[str, Any]]:
    """A new history with the exchange appended and at most ``max_turns`` turns (a turn is one user message
    or one model reply). Whole exchanges are dropped from the front, so the history still starts with a user
    turn, as Gemini requires; with an odd cap one turn of room stays unused."""
    out = [*history, user, model]
    excess = len(out) - max_turns
    if excess > 0:
        out = out[excess + (excess % 2):]
    return out
