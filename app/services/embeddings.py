"""OpenAI embeddings through Gemini's batchEmbedContents (one upstream call for a whole input list)."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from app.keys import NoKeyAvailable
from app.protocols.openai_chat.embeddings import embeddings_from_gemini, merge_batches, parse_embeddings_request, split_batch
from app.protocols.openai_chat.errors import RequestError
from app.services.replies import JsonReply, openai_error_reply
from app.upstream import GeminiClient, UpstreamUnavailable


class EmbeddingsService:
    def __init__(self, client: GeminiClient) -> None:
        self._client = client

    async def embed(self, payload: Any) -> JsonReply:
        try:
            model, body, encoding, requested = parse_embeddings_request(payload)
        except RequestError as exc:
            return openai_error_reply(exc)
        # Gemini takes at most 100 inputs a call: larger inputs go as several calls, answered as one.
        batches = split_batch(body)
        try:
            answers = await asyncio.gather(*(
                self._client.call("POST", f"models/{model}:batchEmbedContents", model=model,
                                  body=orjson.dumps(batch)) for batch in batches))
        except (NoKeyAvailable, UpstreamUnavailable) as exc:
            return openai_error_reply(exc)
        for resp in answers:
            if resp.status != 200:
                return openai_error_reply(resp)
        texts = [r["content"]["parts"][0].get("text", "") for r in body["requests"]]
        merged = merge_batches([orjson.loads(resp.body) for resp in answers])
        return JsonReply.of(embeddings_from_gemini(merged, model=requested, encoding_format=encoding,
                                                   inputs_text=texts))
