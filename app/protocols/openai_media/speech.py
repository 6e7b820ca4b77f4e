"""``POST /v1/audio/speech`` -> a Gemini TTS model's ``generateContent`` with ``responseModalities: AUDIO``.

Gemini answers headerless 16-bit mono PCM (``audio/L16;codec=pcm;rate=24000``): ``pcm`` passes it on, ``wav``
wraps it in a header. There is no mp3/opus/aac/flac encoder here, so those are a 400 naming
``response_format``; an absent ``response_format`` (OpenAI's default is mp3) gives wav. Gemini has no speed
knob: ``speed`` and ``instructions`` become a spoken-style direction in the prompt, which TTS models follow.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from app.errors import InvalidRequest, UpstreamUnavailable
from app.protocols.openai_media.common import inline_parts, number_field, parts_of, string_field
from app.protocols.openai_media.voices import gemini_voice
from app.protocols.openai_media.wav import pcm_rate, pcm_to_wav

FORMATS = ("wav", "pcm")
MAX_INPUT = 4096
CONTENT_TYPES = {"wav": "audio/wav", "pcm": "audio/pcm"}


@dataclass(frozen=True, slots=True)
class SpeechRequest:
    text: str
    voice: str
    response_format: str
    direction: str | None


def _pace(speed: float | None) -> str | None:
    if speed is None or 0.9 <= speed <= 1.1:
        return None
    if speed < 0.6:
        return "very slowly"
    if speed < 0.9:
        return "slowly"
    return "quickly" if speed <= 2 else "very quickly"


def parse_speech_request(payload: Any) -> SpeechRequest:
    if not isinstance(payload, dict):
        raise InvalidRequest("the request body must be a JSON object")
    text = string_field(payload, "input", required=True, limit=MAX_INPUT) or ""
    voice = gemini_voice(payload.get("voice"))
    response_format = string_field(payload, "response_format") or "wav"
    if response_format not in FORMATS:
        raise InvalidRequest(f"response_format {response_format[:20]!r} is not available here; use one of "
                             f"{', '.join(FORMATS)}", param="response_format")
    pace = _pace(number_field(payload, "speed", 0.25, 4.0))
    instructions = string_field(payload, "instructions", limit=MAX_INPUT)
    bits = [b for b in (instructions.strip().rstrip(".:") if instructions else None,
                        f"speak {pace}" if pace else None) if b]
    return SpeechRequest(text, voice, response_format, "; ".join(bits) or None)


def speech_body(req: SpeechRequest) -> dict[str, Any]:
    text = f"{req.direction}: {req.text}" if req.direction else req.text
    voice = {"voiceConfig": {"prebuiltVoiceConfig": {"voiceName": req.voice}}}
    return {"contents": [{"role": "user", "parts": [{"text": text}]}],
            "generationConfig": {"responseModalities": ["AUDIO"], "speechConfig": voice}}


def speech_audio(req: SpeechRequest, response: dict[str, Any]) -> tuple[bytes, str]:
    """(audio bytes, content type): every audio part's PCM joined, wrapped for ``wav``."""
    found = inline_parts(parts_of(response), "audio/")
    if not found:
        raise UpstreamUnavailable("the speech model answered without audio")
    try:
        pcm = b"".join(base64.b64decode(p.data) for p in found)
    except ValueError:
        raise UpstreamUnavailable("the speech model answered unreadable audio") from None
    if req.response_format == "pcm":
        return pcm, CONTENT_TYPES["pcm"]
    return pcm_to_wav(pcm, pcm_rate(found[0].mime)), CONTENT_TYPES["wav"]
