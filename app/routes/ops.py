"""Liveness, pool summary and the tiny root page that keep-alive pingers hit. Open, and never leak a key."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.routes.common import gateway
from app.security import bearer
from app.services.replies import JsonReply
from app.routes.responses import to_response


async def health(request: Request) -> Response:
    gw = gateway(request)
    counts = await gw.keys.summary()
    summary: dict[str, object] = {
        "status": "ok" if counts["total"] else "no_keys",
        "keys": counts,
        "store": "redis" if gw.settings.redis_url else "memory",
    }
    if not counts["total"]:
        summary["message"] = "no API keys are configured: set API_KEYS"
    summary.update(gw.health_extras())
    return to_response(JsonReply.of(summary))


async def metrics(request: Request) -> Response:
    gw = gateway(request)
    if gw.metrics_guard.configured and not gw.metrics_guard.check(bearer(request.headers)):
        return to_response(JsonReply.of({"error": {"message": "missing or invalid metrics token"}}, 401))
    body = gw.metrics.render(await gw.keys.summary(), gw.events.stats())
    return Response(body, 200, media_type=gw.metrics.CONTENT_TYPE)


async def root(request: Request) -> Response:
    return to_response(JsonReply.of({"service": "gemini-gateway", "status": "ok"}))


def routes() -> list[Route]:
    return [Route("/health", health, methods=["GET"]), Route("/metrics", metrics, methods=["GET"]),
            Route("/", root, methods=["GET", "HEAD"]), Route("/hf/health", health, methods=["GET"]),
            Route("/hf", root, methods=["GET", "HEAD"]), Route("/hf/", root, methods=["GET", "HEAD"])]
