"""OpenAI media routes on the pool: images, speech and transcription, each one or more ``generateContent``
calls through the shared upstream client (retries, key rotation, cooldowns), translated by
:mod:`app.protocols.openai_media`.

Each call publishes one interaction (so token limits and the usage history count media too); the record
carries the route and Gemini's usage, never the media bytes, which would swamp every exporter.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson

from app.errors import GatewayError, UpstreamUnavailable
from app.gemini.scrub import scrub
from app.observability.events import EventSink
from app.protocols.openai_media import MediaModels, resolve_model
from app.protocols.openai_media.images import ImageRequest, image_body, images_response
from app.protocols.openai_media.speech import parse_speech_request, speech_audio, speech_body
from app.protocols.openai_media.transcription import (TranscriptionRequest, transcription_body,
                                                      transcription_response)
from app.services.calls import CallRecord
from app.services.replies import JsonReply, upstream_error
from app.upstream import GeminiClient


class MediaGenService:
    def __init__(self, client: GeminiClient, models: MediaModels, events: EventSink) -> None:
        self._client = client
        self.models = models
        self._events = events

    async def _generate(self, model: str, body: dict[str, Any], route: str) -> dict[str, Any]:
        record = CallRecord(self._events, "openai", model, {"route": route, "model": model}, time.time())
        raw = orjson.dumps(body)
        try:
            resp = await self._client.call("POST", f"models/{model}:generateContent", model=model, body=raw)
        except GatewayError as exc:
            record.done(exc.status, error=exc.message)
            raise
        if resp.status != 200:
            error = upstream_error(resp)
            record.done(error.status, key_id=resp.key_id, error=scrub(error.message))
            raise error
        try:
            answer = orjson.loads(resp.body)
        except orjson.JSONDecodeError:
            answer = None
        if not isinstance(answer, dict):
            record.done(502, key_id=resp.key_id, error="unreadable upstream answer")
            raise UpstreamUnavailable("the upstream answered an unreadable body")
        usage = answer.get("usageMetadata") if isinstance(answer.get("usageMetadata"), dict) else {}
        record.done(200, key_id=resp.key_id, usage=usage, size=len(raw) + len(resp.body))
        return answer

    async def images(self, req: ImageRequest, model_name: object) -> JsonReply:
        """``n`` images are ``n`` concurrent calls: Gemini's image models return one image per candidate."""
        model = resolve_model(model_name, "image", self.models)
        body = image_body(req)
        answers = await asyncio.gather(*(self._generate(model, body, "images") for _ in range(req.n)))
        return JsonReply.of(images_response(req, list(answers), int(time.time())))

    async def speech(self, payload: Any) -> JsonReply:
        req = parse_speech_request(payload)
        model = resolve_model(payload.get("model"), "tts", self.models)
        audio, content_type = speech_audio(req, await self._generate(model, speech_body(req), "audio/speech"))
        return JsonReply(200, audio, {}, content_type)

    async def transcribe(self, req: TranscriptionRequest, model_name: object) -> JsonReply:
        model = resolve_model(model_name, "transcribe", self.models)
        answer = await self._generate(model, transcription_body(req), "audio/transcriptions")
        body, content_type = transcription_response(req, answer)
        raw = body if isinstance(body, bytes) else orjson.dumps(body)
        return JsonReply(200, raw, {}, content_type)
