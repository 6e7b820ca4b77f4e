"""OpenAI embeddings through Gemini's batchEmbedContents (one upstream call for a whole input list)."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from app.protocols.openai_chat.embeddings import (embeddings_from_gemini, merge_batches, parse_embeddings_request,
                                                  split_batch)
from app.services.replies import JsonReply, upstream_error
from app.upstream import GeminiClient


class EmbeddingsService:
    def __init__(self, client: GeminiClient) -> None:
        self._client = client

    async def embed(self, payload: Any) -> JsonReply:
        model, body, encoding, requested = parse_embeddings_request(payload)
        # Gemini takes at most 100 inputs a call: larger inputs go as several calls, answered as one.
        batches = split_batch(body)
        answers = await asyncio.gather(*(
            self._client.call("POST", f"models/{model}:batchEmbedContents", model=model,
                              body=orjson.dumps(batch)) for batch in batches))
        for resp in answers:
            if resp.status != 200:
                raise upstream_error(resp)
        texts = [r["content"]["parts"][0].get("text", "") for r in body["requests"]]
        merged = merge_batches([orjson.loads(resp.body) for resp in answers])
        return JsonReply.of(embeddings_from_gemini(merged, model=requested, encoding_format=encoding,
                                                   inputs_text=texts))
