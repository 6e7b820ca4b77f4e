"""Legacy prompt completions -> Gemini and back. Some frameworks still call ``/v1/completions`` by default.

One prompt (a string, or a one-element list) is one user turn; ``suffix``, ``echo`` with logprobs and
``best_of`` > 1 have no Gemini counterpart and are refused by name rather than ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.gemini.errors import StreamBroke
from app.gemini.parts import answer_text, candidate_parts
from app.protocols.openai_chat.candidates import map_finish_reason
from app.protocols.openai_chat.errors import RequestError
from app.protocols.openai_chat.families import bare_model
from app.protocols.openai_chat.generation import generation_config
from app.protocols.openai_chat.usage import usage_from_gemini, zero_usage

__all__ = ["CompletionRequest", "chunk_from_gemini", "completion_from_gemini", "parse_completion_request"]


@dataclass
class CompletionRequest:
    model: str
    requested_model: str
    body: dict[str, Any]
    stream: bool
    echo_prompt: str | None


def parse_completion_request(payload: Any) -> CompletionRequest:
    if not isinstance(payload, Mapping):
        raise RequestError("the request body must be a JSON object")
    model = bare_model(payload.get("model"))
    prompt = payload.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise RequestError("prompt must be a string (or an array holding one string)", "prompt")
    for field, default in (("suffix", None), ("best_of", 1)):
        if payload.get(field) not in (None, default):
            raise RequestError(f"{field} is not supported by Gemini", field)
    stream = payload.get("stream") is True
    config_source = dict(payload)
    if config_source.get("logprobs") is not None:  # legacy logprobs is an integer; Chat's is a boolean
        config_source.pop("logprobs")
    config = generation_config(config_source, int(payload.get("n") or 1))
    body: dict[str, Any] = {"contents": [{"role": "user", "parts": [{"text": prompt or " "}]}]}
    if config:
        body["generationConfig"] = config
    echo = prompt if payload.get("echo") is True else None
    return CompletionRequest(model, payload["model"], body, stream, echo)


def _choices(resp: Mapping[str, Any], echo: str | None) -> list[dict[str, Any]]:
    choices = []
    for n, candidate in enumerate(resp.get("candidates") or []):
        text = answer_text(candidate_parts(candidate))
        reason = candidate.get("finishReason")
        choices.append({"text": (echo or "") + text, "index": candidate.get("index", n), "logprobs": None,
                        "finish_reason": map_finish_reason(reason, False) if reason else None})
    return choices


def completion_from_gemini(resp: Mapping[str, Any], *, completion_id: str, model: str, created: int,
                           echo: str | None) -> dict[str, Any]:
    return {"id": completion_id, "object": "text_completion", "created": created, "model": model,
            "choices": _choices(resp, echo), "usage": usage_from_gemini(resp.get("usageMetadata")) or zero_usage()}


def chunk_from_gemini(resp: Mapping[str, Any], *, completion_id: str, model: str, created: int,
                      echo: str | None) -> dict[str, Any]:
    """One stream chunk per Gemini chunk (the same shape as a whole completion, ``text`` a delta)."""
    chunk = completion_from_gemini(resp, completion_id=completion_id, model=model, created=created, echo=echo)
    if resp.get("usageMetadata") is None:
        chunk["usage"] = None
    return chunk


class CompletionStream:
    """Gemini stream chunks -> legacy completion chunks; the prompt is echoed once, in the first chunk."""

    def __init__(self, *, completion_id: str, model: str, created: int, echo: str | None) -> None:
        self._id = completion_id
        self._model = model
        self._created = created
        self._echo = echo
        self._text: list[str] = []
        self.signatures: dict[str, str] = {}

    def feed(self, chunk: Any) -> list[dict[str, Any]]:
        if not isinstance(chunk, dict):
            return []
        if chunk.get("error") is not None:
            code = chunk["error"].get("code") if isinstance(chunk["error"], dict) else None
            raise StreamBroke(code if isinstance(code, int) else 500, chunk)
        out = chunk_from_gemini(chunk, completion_id=self._id, model=self._model, created=self._created,
                                echo=self._echo)
        self._echo = None
        for choice in out.get("choices") or ():
            self._text.append(str(choice.get("text") or ""))
        return [out]

    def finish(self) -> list[dict[str, Any]]:
        return []

    @property
    def text(self) -> str:
        return "".join(self._text)
