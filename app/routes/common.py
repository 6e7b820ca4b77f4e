"""Small helpers every router shares: the gateway container, the routes' settings, body reading with a cap."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request

from app.errors import InvalidRequest

if TYPE_CHECKING:
    from app.gateway import Gateway


class BodyError(InvalidRequest):
    """An unreadable or oversized body (400 or 413); surfaces render it like any refused request."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message, code="request_too_large" if status == 413 else "invalid_body")
        self.status = status


@dataclass(frozen=True, slots=True)
class RouteConfig:
    """The settings route handlers read: ``MAX_REQUEST_BODY`` (bytes), ``BODY_TIMEOUT`` and
    ``STREAM_KEEPALIVE`` (seconds), ``MODEL_SEARCH`` (models listed with search enabled)."""

    max_request_body: int = 32 * 1024 * 1024
    body_timeout: float = 30.0
    stream_keepalive: float = 15.0
    model_search: tuple[str, ...] = ()


def gateway(request: Request) -> Gateway:
    return request.app.state.gateway  # type: ignore[no-any-return]


async def read_body(request: Request, limit: int) -> bytes:
    """The body, counted while it arrives: 413 as soon as ``limit`` passes, Content-Length or chunked alike
    (a chunked body used to be buffered whole before the check), and 408 when the client pauses longer than
    ``BODY_TIMEOUT`` between two pieces (a slow client must not hold a worker's connection indefinitely)."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise BodyError(f"request body is larger than the limit of {limit} bytes", 413)
    idle = _body_timeout(request)
    chunks: list[bytes] = []
    size = 0
    stream = request.stream().__aiter__()
    while True:
        try:
            async with asyncio.timeout(idle):
                chunk = await anext(stream)
        except StopAsyncIteration:
            break
        except TimeoutError:
            raise BodyError(f"the request body stalled for more than {idle:g} seconds", 408) from None
        size += len(chunk)
        if size > limit:
            raise BodyError(f"request body is larger than the limit of {limit} bytes", 413)
        if chunk:
            chunks.append(chunk)
    body = b"".join(chunks)
    request._body = body  # later request.body() calls see the same bytes
    return body


def _body_timeout(request: Request) -> float | None:
    gw = getattr(request.app.state, "gateway", None)
    return getattr(getattr(gw, "http", None), "body_timeout", None)


async def read_json(request: Request, limit: int) -> Any:
    body = await read_body(request, limit)
    if not body.strip():
        raise BodyError("request body is empty; expected a JSON object")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BodyError(f"request body is not valid JSON: {exc}") from None
