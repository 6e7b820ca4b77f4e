"""Deliver Reconify payloads to ``RECONIFY_ENDPOINT``: one POST per interaction, a few in flight.

Reconify's REST API documents one interaction object per request body and no batch form, so "batching" here
means bounded concurrency (``RECONIFY_CONCURRENCY`` consumer tasks, each with one POST in flight) over one
pooled ``httpx.AsyncClient``. A collector that is down or slow is retried with jittered exponential backoff on
5xx, 408, 429, timeouts and connection errors (tenacity); any other 4xx is our payload's or our keys' fault
and is not retried. Nothing logged here carries the endpoint, the keys, or message text.
"""

from __future__ import annotations

from collections.abc import Sequence

import httpx
import orjson
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from app.observability.events import Interaction
from app.observability.exporter import ExportError
from app.observability.reconify import build_payload

RETRY_STATUSES = frozenset({408, 429})


class RetryableExportError(ExportError):
    """A failure that may pass on a later attempt (5xx, 408, 429, timeout, connection error)."""


class ReconifyExporter:
    name = "reconify"
    wants_bodies = True
    batch_size = 1

    def __init__(self, endpoint: str, *, app_key: str, api_key: str, session_timeout: int, redact: bool,
                 timeout: float, max_attempts: int, backoff: float, backoff_max: float,
                 concurrency: int) -> None:
        self._endpoint = endpoint
        self._app_key = app_key
        self._api_key = api_key
        self._session_timeout = session_timeout
        self._redact = redact
        self._timeout = timeout
        self._max_attempts = max_attempts
        self._backoff = backoff
        self._backoff_max = backoff_max
        self.concurrency = concurrency
        self.retries = 0
        self._client: httpx.AsyncClient | None = None

    def accepts(self, event: Interaction) -> bool:
        """Reconify records answered prompts: a call that produced no response has nothing to show there."""
        return event.response is not None

    async def open(self) -> None:
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(self._timeout), limits=limits,
                                         follow_redirects=False,
                                         headers={"content-type": "application/json",
                                                  "user-agent": "gemini-gateway-analytics"})

    def payload(self, event: Interaction) -> bytes:
        return orjson.dumps(build_payload(event, session_timeout=self._session_timeout, redact=self._redact,
                                          app_key=self._app_key, api_key=self._api_key))

    async def export(self, batch: Sequence[Interaction]) -> int:
        bad = 0
        for event in batch:
            try:
                body = self.payload(event)
            except (TypeError, orjson.JSONEncodeError):
                bad += 1
                continue
            await self.deliver(body)
        return bad

    async def deliver(self, body: bytes) -> None:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._max_attempts),
            wait=wait_exponential_jitter(initial=self._backoff, max=self._backoff_max, jitter=self._backoff),
            retry=retry_if_exception_type(RetryableExportError), reraise=True)
        async for attempt in retrying:
            with attempt:
                if attempt.retry_state.attempt_number > 1:
                    self.retries += 1
                await self._post(body)

    async def _post(self, body: bytes) -> None:
        if self._client is None:
            raise ExportError("not started")
        try:
            response = await self._client.post(self._endpoint, content=body)
        except httpx.TimeoutException:
            raise RetryableExportError("timed out") from None
        except httpx.TransportError as exc:
            raise RetryableExportError(f"connection error ({type(exc).__name__})") from None
        status = response.status_code
        if status >= 500 or status in RETRY_STATUSES:
            raise RetryableExportError(f"collector answered {status}")
        if not 200 <= status < 300:
            raise ExportError(f"collector answered {status} (not retried)")

    def extra_stats(self) -> dict[str, int]:
        return {"retries": self.retries}

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()
