"""Surface: auth, rendering of gateway errors and of crashes, fallback 404, the metrics label."""

from __future__ import annotations

import logging

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount
from starlette.testclient import TestClient

from app.errors import GatewayError, PoolRateLimited, Unauthenticated
from app.surfaces import SURFACE_KEY, Surface, json_response

seen_labels: list[str] = []
SECRET = "secret-message-body"


def render(exc: GatewayError) -> Response:
    return json_response(exc.status, {"shape": "test", "message": exc.message, "code": exc.code}, exc.headers())


def deny_without_header(request: Request) -> None:
    if request.headers.get("x-ok") != "yes":
        raise Unauthenticated("say yes")


async def fine(request: Request) -> Response:
    seen_labels.append(request.scope[SURFACE_KEY])
    return Response("fine")


async def crash(request: Request) -> Response:
    raise RuntimeError(SECRET.upper())  # made at run time: the source line is in the trace


async def cooling(request: Request) -> Response:
    raise PoolRateLimited("every key is cooling", retry_after=2.2)


SURFACE = Surface("test", render, deny_without_header)


def client() -> TestClient:
    routes = [SURFACE.route("/fine", fine, ["GET"]), SURFACE.route("/crash", crash, ["GET"]),
              SURFACE.route("/cooling", cooling, ["GET"]), SURFACE.route("/open", fine, ["GET"], auth=False),
              SURFACE.fallback()]
    return TestClient(Starlette(routes=[Mount("/api", routes=routes)]), raise_server_exceptions=False)


def test_authenticates_before_the_handler() -> None:
    c = client()
    r = c.get("/api/fine")
    assert r.status_code == 401 and r.json() == {"shape": "test", "message": "say yes", "code": "invalid_api_key"}
    assert c.get("/api/fine", headers={"x-ok": "yes"}).text == "fine"
    assert c.get("/api/open").text == "fine" and seen_labels[-1] == "test"


def test_gateway_errors_render_with_retry_after() -> None:
    r = client().get("/api/cooling", headers={"x-ok": "yes"})
    assert r.status_code == 429 and r.headers["retry-after"] == "3" and r.json()["code"] == "rate_limit_exceeded"


def test_a_crash_is_a_json_500_in_the_surface_shape_and_logged(caplog) -> None:
    with caplog.at_level(logging.ERROR, "gateway.surface"):
        r = client().get("/api/crash", headers={"x-ok": "yes"})
    assert r.status_code == 500 and r.headers["content-type"] == "application/json"
    assert r.json()["shape"] == "test" and SECRET.upper() not in r.text
    assert "unexpected RuntimeError on GET /api/crash" in caplog.text and "in crash" in caplog.text
    assert SECRET.upper() not in caplog.text


def test_fallback_names_method_and_path_for_any_method() -> None:
    for method in ("GET", "POST", "DELETE", "PATCH"):
        r = client().request(method, "/api/some/where")
        assert r.status_code == 404 and r.json()["code"] == "unknown_route"
        assert r.json()["message"] == f"no route for {method} /api/some/where on this gateway"
