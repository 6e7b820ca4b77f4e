"""Which Gemini model serves a media route: OpenAI's names map to the route's default (a setting); a Gemini
model named by the client is used as named."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from app.protocols.openai_chat.errors import RequestError

Route = Literal["image", "tts", "transcribe"]

#: OpenAI model names (by prefix) that mean "this route's default model".
OPENAI_PREFIXES: dict[Route, tuple[str, ...]] = {
    "image": ("gpt-image-", "dall-e-", "chatgpt-image"),
    "tts": ("tts-1", "gpt-4o-mini-tts", "gpt-4o-tts"),
    "transcribe": ("whisper-", "gpt-4o-transcribe", "gpt-4o-mini-transcribe"),
}

_NAME = re.compile(r"(?:models/)?([A-Za-z0-9._-]{1,128})")


@dataclass(frozen=True, slots=True)
class MediaModels:
    """The defaults behind OpenAI's names (``IMAGE_MODEL``, ``TTS_MODEL``, ``TRANSCRIBE_MODEL``)."""

    image: str
    tts: str
    transcribe: str

    def default(self, route: Route) -> str:
        return {"image": self.image, "tts": self.tts, "transcribe": self.transcribe}[route]


def resolve_model(value: object, route: Route, models: MediaModels) -> str:
    """The bare Gemini model id for ``value`` (absent: the default); a malformed name is a 400 on ``model``."""
    if value is None or value == "":
        return models.default(route)
    if not isinstance(value, str):
        raise RequestError("model must be a string", "model")
    if value.lower().startswith(OPENAI_PREFIXES[route]):
        return models.default(route)
    match = _NAME.fullmatch(value)
    if match is None or match.group(1) in {".", ".."}:
        raise RequestError(f"model {value[:100]!r} is not a valid model name", "model")
    return match.group(1)


ALIASES: dict[Route, tuple[str, ...]] = {
    "image": ("gpt-image-1", "gpt-image-1-mini", "dall-e-2", "dall-e-3"),
    "tts": ("tts-1", "tts-1-hd", "gpt-4o-mini-tts"),
    "transcribe": ("whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe"),
}
_ROUTE_PATHS: dict[Route, str] = {"image": "/v1/images/*", "tts": "/v1/audio/speech",
                                  "transcribe": "/v1/audio/transcriptions"}


def alias_entries(models: MediaModels, created: int = 0) -> list[dict[str, Any]]:
    """``/v1/models`` entries for OpenAI's media model names, each saying which Gemini model serves it."""
    return [{"id": name, "object": "model", "created": created, "owned_by": "gemini-gateway",
             "display_name": f"{name} -> {models.default(route)} ({_ROUTE_PATHS[route]})"}
            for route, names in ALIASES.items() for name in names]
