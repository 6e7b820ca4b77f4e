"""The upstream model list, fetched through the pool and cached so that ``GET /v1/models`` costs no quota."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson

from app.services.replies import upstream_error
from app.upstream import MODELS_BUCKET, GeminiClient


class ModelCatalog:
    def __init__(self, client: GeminiClient, ttl: float) -> None:
        self._client = client
        self._ttl = ttl
        self._models: list[dict[str, Any]] | None = None
        self._fetched = 0.0
        self._lock = asyncio.Lock()

    async def served(self) -> list[dict[str, Any]]:
        """The upstream models some key of the pool may be sent (``KEY_MODELS`` / ``KEY_EXCLUDE_MODELS``):
        a listing never advertises a model whose every call would be a 404."""
        may_serve = self._client.keys.may_serve
        return [m for m in await self.models() if may_serve(str(m.get("name", "")))]

    async def models(self) -> list[dict[str, Any]]:
        """Every upstream model (all pages); raises :class:`UpstreamError` when the upstream refused."""
        if self._models is not None and time.monotonic() - self._fetched < self._ttl:
            return self._models
        async with self._lock:  # one fetch for a burst of callers
            if self._models is not None and time.monotonic() - self._fetched < self._ttl:
                return self._models
            models: list[dict[str, Any]] = []
            token = ""
            for _ in range(20):  # 1000 a page: far more pages than Gemini has models
                query = "pageSize=1000" + (f"&pageToken={token}" if token else "")
                resp = await self._client.call("GET", "models", model=MODELS_BUCKET, query=query)
                if resp.status != 200:
                    raise upstream_error(resp)
                page = orjson.loads(resp.body)
                models.extend(page.get("models") or [])
                token = page.get("nextPageToken") or ""
                if not token:
                    break
            self._models, self._fetched = models, time.monotonic()
            return models
