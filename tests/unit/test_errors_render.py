"""The last-resort handler: any unhandled exception is a JSON 500 in the surface's shape, logged sanitised."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from app.errors_render import LastResort, error_body, surface_of

SECRET = "client-secret-text-4711"


async def boom(request: Request) -> None:
    raise ValueError(f"bad thing with {SECRET}")


async def broken_stream(request: Request) -> StreamingResponse:
    async def body() -> AsyncIterator[bytes]:
        yield b"data: {}\n\n"
        raise ValueError(SECRET)
    return StreamingResponse(body(), media_type="text/event-stream")


def _client() -> TestClient:
    paths = ["/v1/chat/completions", "/hf/v1/embeddings", "/v1beta/models/{m:path}",
             "/gemini/v1beta/models/{m:path}", "/v1/models/{m:path}", "/start_chat", "/hf/send_message",
             "/admin/api/keys"]
    routes = [Route(p, boom, methods=["POST"]) for p in paths] + [Route("/v1/stream", broken_stream)]
    app = Starlette(routes=routes, middleware=[Middleware(LastResort)])
    return TestClient(app, raise_server_exceptions=False)


@pytest.mark.parametrize(("path", "surface"), [
    ("/v1/chat/completions", "openai"), ("/hf/v1/embeddings", "openai"),
    ("/v1beta/models/gemini-2.5-flash:generateContent", "native"),
    ("/gemini/v1beta/models/gemini-2.5-flash:countTokens", "native"),
    ("/v1/models/gemini-2.5-flash:generateContent", "native"),
    ("/start_chat", "session"), ("/hf/send_message", "session"), ("/admin/api/keys", "admin"),
])
def test_unhandled_exception_is_the_surfaces_json_500(path: str, surface: str,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    assert surface_of(path) == surface
    with caplog.at_level(logging.ERROR, logger="gateway.errors"):
        resp = _client().post(path, json={})
    assert resp.status_code == 500
    assert resp.headers["content-type"] == "application/json"
    assert resp.json() == error_body(surface)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "ValueError" in logged and "boom" in logged and path in logged
    assert SECRET not in logged and SECRET not in resp.text


def test_shapes_are_each_protocols_envelope() -> None:
    assert error_body("openai")["error"].keys() == {"message", "type", "param", "code"}
    assert error_body("native")["error"]["status"] == "INTERNAL"
    assert isinstance(error_body("session")["error"], str)
    assert error_body("admin")["error"]["code"] == 500


def test_failure_after_the_response_started_is_logged_not_rendered(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="gateway.errors"):
        resp = _client().get("/v1/stream")
    assert resp.status_code == 200  # already sent; nothing was appended to the stream
    assert "internal error" not in resp.text
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "unhandled ValueError on GET /v1/stream" in logged and SECRET not in logged
