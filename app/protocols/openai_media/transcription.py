"""``POST /v1/audio/transcriptions`` (multipart) -> ``generateContent`` with the audio inline and an
instruction to transcribe verbatim.

``response_format``: ``json`` (default), ``text``, ``verbose_json``: the model is then asked for JSON segments
with start and end seconds (a model's timestamps are approximate); an answer that is not such JSON still
gives the transcript, without segments. Duration is measured for WAV input. ``srt``/``vtt`` are a 400.
"""

from __future__ import annotations

import base64
import mimetypes
from dataclasses import dataclass
from typing import Any

import orjson

from app.errors import InvalidRequest
from app.gemini.parts import answer_text
from app.protocols.openai_media.common import number_field, parts_of, string_field, usage_of
from app.protocols.openai_media.wav import wav_duration

FORMATS = ("json", "text", "verbose_json")
#: Upload mime types Gemini does not know by those names.
_MIME_FIXES = {"audio/x-wav": "audio/wav", "audio/wave": "audio/wav", "audio/mpeg3": "audio/mp3",
               "audio/x-m4a": "audio/m4a", "audio/mp4": "audio/m4a", "audio/x-flac": "audio/flac"}


@dataclass(frozen=True, slots=True)
class TranscriptionRequest:
    audio: bytes
    mime_type: str
    language: str | None
    prompt: str | None
    response_format: str
    temperature: float | None


def audio_mime(filename: str | None, content_type: str | None) -> str:
    """The upload's mime type: its own if it is an audio/video one, else guessed from the file name."""
    mime = (content_type or "").split(";")[0].strip().lower()
    if not mime.startswith(("audio/", "video/")):
        guessed = mimetypes.guess_type(filename or "")[0] or ""
        mime = guessed if guessed.startswith(("audio/", "video/")) else ""
    if not mime:
        raise InvalidRequest("file must be an audio file (wav, mp3, m4a, flac, ogg, webm, ...)", param="file")
    return _MIME_FIXES.get(mime, mime)


def parse_transcription_request(form: dict[str, Any], audio: bytes | None,
                                mime_type: str) -> TranscriptionRequest:
    if not audio:
        raise InvalidRequest("file is required: the audio to transcribe, as a multipart file", param="file")
    response_format = string_field(form, "response_format") or "json"
    if response_format not in FORMATS:
        raise InvalidRequest(f"response_format must be one of {', '.join(FORMATS)}", param="response_format")
    return TranscriptionRequest(audio, mime_type, string_field(form, "language", limit=20),
                                string_field(form, "prompt", limit=8000), response_format,
                                number_field(form, "temperature", 0, 1))


#: What ``verbose_json`` asks the model for.
SEGMENTS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "language": {"type": "string", "description": "ISO 639-1 code of the spoken language"},
        "segments": {"type": "array", "items": {"type": "object", "properties": {
            "start": {"type": "number", "description": "seconds from the start of the audio"},
            "end": {"type": "number", "description": "seconds from the start of the audio"},
            "text": {"type": "string"}}, "required": ["start", "end", "text"]}}},
    "required": ["segments"],
}


def transcription_body(req: TranscriptionRequest) -> dict[str, Any]:
    instruction = "Transcribe this audio verbatim. Answer with the transcript only, no commentary."
    if req.response_format == "verbose_json":
        instruction = ("Transcribe this audio verbatim, as segments of about a sentence each, with the start "
                       "and end of each segment in seconds from the start of the audio.")
    if req.language:
        instruction += f" The audio is in language '{req.language}'."
    if req.prompt:
        instruction += f" Context and spelling hints: {req.prompt}"
    body: dict[str, Any] = {"contents": [{"role": "user", "parts": [
        {"text": instruction},
        {"inlineData": {"mimeType": req.mime_type, "data": base64.b64encode(req.audio).decode("ascii")}}]}]}
    config: dict[str, Any] = {}
    if req.temperature is not None:
        config["temperature"] = req.temperature
    if req.response_format == "verbose_json":
        config.update(responseMimeType="application/json", responseJsonSchema=SEGMENTS_SCHEMA)
    if config:
        body["generationConfig"] = config
    return body


def _segments(answer: str) -> tuple[list[dict[str, Any]], str | None] | None:
    """The model's JSON segments as OpenAI segment objects (and its language), or None if it gave none."""
    try:
        data = orjson.loads(answer)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("segments"), list):
        return None
    out: list[dict[str, Any]] = []
    for item in data["segments"]:
        if not isinstance(item, dict) or not isinstance(item.get("text"), str):
            continue
        start, end = item.get("start"), item.get("end")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (start, end)):
            continue
        out.append({"id": len(out), "seek": 0, "start": float(start), "end": float(max(start, end)),
                    "text": item["text"]})
    language = data.get("language")
    return out, language if isinstance(language, str) and language else None


def transcription_response(req: TranscriptionRequest,
                           response: dict[str, Any]) -> tuple[bytes | dict[str, Any], str]:
    """(body, content type): the transcript as text, or OpenAI's JSON shapes with usage."""
    text = answer_text(parts_of(response)).strip()
    if req.response_format == "text":
        return (text + "\n").encode(), "text/plain; charset=utf-8"
    tokens_in, tokens_out = usage_of(response)
    usage = {"type": "tokens", "input_tokens": tokens_in, "output_tokens": tokens_out,
             "total_tokens": tokens_in + tokens_out}
    if req.response_format == "json":
        return {"text": text, "usage": usage}, "application/json"
    parsed = _segments(text)
    segments, language = parsed if parsed is not None else (None, None)
    if segments is not None:
        text = " ".join(s["text"].strip() for s in segments).strip()
    body: dict[str, Any] = {"task": "transcribe", "language": req.language or language or "unknown",
                            "text": text}
    if segments is not None:
        body["segments"] = segments
    duration = wav_duration(req.audio)
    if duration is not None:
        body["duration"] = round(duration, 3)
    body["usage"] = usage
    return body, "application/json"
