"""Liveness, pool summary, metrics and the tiny root page that keep-alive pingers hit. Open (``/metrics``
optionally behind ``METRICS_TOKEN``), and never leak a key."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.errors import GatewayError, Unauthenticated
from app.routes.common import gateway
from app.routes.responses import to_response
from app.security import bearer
from app.services.replies import JsonReply
from app.surfaces import Surface, json_response


def render(exc: GatewayError) -> Response:
    return json_response(exc.status, {"error": {"message": exc.message, "code": exc.code}}, exc.headers())


SURFACE = Surface("ops", render)


async def health(request: Request) -> Response:
    gw = gateway(request)
    counts = await gw.keys.summary()
    summary: dict[str, object] = {
        "status": "ok" if counts["total"] else "no_keys",
        "keys": counts,
        "store": "redis" if gw.redis is not None else "memory",
    }
    if not counts["total"]:
        summary["message"] = "no API keys are configured: set API_KEYS"
    summary.update(gw.health_extras())
    return to_response(JsonReply.of(summary))


async def metrics(request: Request) -> Response:
    gw = gateway(request)
    if gw.metrics_guard.configured and not gw.metrics_guard.check(bearer(request.headers)):
        raise Unauthenticated("missing or invalid metrics token")
    body = gw.metrics.render(await gw.keys.summary(), gw.events.stats(), await gw.keys.snapshot(),
                             gw.redis.stats() if gw.redis else None)
    return Response(body, 200, media_type=gw.metrics.CONTENT_TYPE)


async def root(request: Request) -> Response:
    return to_response(JsonReply.of({"service": "gemini-gateway", "status": "ok"}))


def routes() -> list[Route]:
    return [SURFACE.route("/health", health, ["GET"]), SURFACE.route("/metrics", metrics, ["GET"]),
            SURFACE.route("/", root, ["GET", "HEAD"])]
