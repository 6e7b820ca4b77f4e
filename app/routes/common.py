"""Small helpers every router shares: the gateway container, body reading with a size cap."""

from __future__ import annotations

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


def gateway(request: Request) -> Gateway:
    return request.app.state.gateway  # type: ignore[no-any-return]


async def read_body(request: Request, limit: int) -> bytes:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise BodyError(f"request body is larger than the limit of {limit} bytes", 413)
    body = await request.body()
    if len(body) > limit:
        raise BodyError(f"request body is larger than the limit of {limit} bytes", 413)
    return body


async def read_json(request: Request, limit: int) -> Any:
    body = await read_body(request, limit)
    if not body.strip():
        raise BodyError("request body is empty; expected a JSON object")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BodyError(f"request body is not valid JSON: {exc}") from None
