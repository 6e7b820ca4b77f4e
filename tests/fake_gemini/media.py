"""Image and speech answers for the fake's image (``*-image*``) and TTS (``*-tts*``) models.

Shapes as Gemini sends them: an image model answers a text part then an ``inlineData`` ``image/png`` part;
a TTS model answers one ``inlineData`` part of ``audio/L16;codec=pcm;rate=24000`` (headerless 16-bit mono
PCM); usage carries ``candidatesTokensDetails`` by modality (1290 tokens per image, 25 per audio second).
The image is a small valid PNG whose colour comes from the prompt; the audio a short tone.
"""

from __future__ import annotations

import base64
import hashlib
import math
import struct
import zlib
from typing import Any

from . import answers

PCM_MIME = "audio/L16;codec=pcm;rate=24000"
PCM_RATE = 24_000
IMAGE_TOKENS = 1290
AUDIO_TOKENS_PER_SECOND = 25


def is_image_model(model: str) -> bool:
    return "-image" in model or model.startswith("nano-banana")


def is_tts_model(model: str) -> bool:
    return "-tts" in model


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A valid solid-colour RGB PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def tone(seconds: float, hz: float = 440.0) -> bytes:
    """16-bit little-endian mono PCM at 24 kHz."""
    count = int(PCM_RATE * seconds)
    return b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * hz * i / PCM_RATE))) for i in range(count))


def _usage(request: dict[str, Any], modality: str, tokens: int) -> dict[str, Any]:
    prompt = answers.prompt_tokens(request)
    return {"promptTokenCount": prompt, "candidatesTokenCount": tokens, "totalTokenCount": prompt + tokens,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}],
            "candidatesTokensDetails": [{"modality": modality, "tokenCount": tokens}]}


def _response(model: str, parts: list[dict[str, Any]], usage: dict[str, Any]) -> dict[str, Any]:
    return {"candidates": [{"content": {"parts": parts, "role": "model"}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": usage, "modelVersion": model, "responseId": answers.new_response_id()}


def media_answer(model: str, request: dict[str, Any], label: str = "") -> dict[str, Any] | None:
    """The whole response of a non-stream call to an image or TTS model; None for other models."""
    text_in = answers.user_text(answers.last_user_content(request))
    if is_image_model(model):
        digest = hashlib.sha256(text_in.encode()).digest()
        image = png(16, 16, (digest[0], digest[1], digest[2]))
        parts = [{"text": f"{label}Here is an image for: {text_in[:200]}"},
                 {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(image).decode("ascii")}}]
        return _response(model, parts, _usage(request, "IMAGE", IMAGE_TOKENS))
    if is_tts_model(model):
        seconds = min(2.0, 0.1 + 0.05 * answers.count_words(text_in))
        audio = base64.b64encode(tone(seconds)).decode("ascii")
        parts = [{"inlineData": {"mimeType": PCM_MIME, "data": audio}}]
        return _response(model, parts, _usage(request, "AUDIO", max(1, int(seconds * AUDIO_TOKENS_PER_SECOND))))
    return None
