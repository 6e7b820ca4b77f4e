"""Liveness, pool summary and the tiny root page that keep-alive pingers hit. Open, and never leak a key."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.routes.common import gateway
from app.security import TokenGuard, bearer
from app.services.replies import JsonReply
from app.routes.responses import to_response


async def health(request: Request) -> Response:
    gw = gateway(request)
    keys = await gw.keys.snapshot()
    states = [k["state"] for k in keys]
    summary = {
        "status": "ok" if keys else "no_keys",
        "keys": {"total": len(keys), "active": states.count("active"), "cooling": states.count("cooling"),
                 "disabled": states.count("disabled")},
        "store": "redis" if gw.settings.redis_url else "memory",
    }
    if not keys:
        summary["message"] = "no API keys are configured: set API_KEYS"
    summary.update(gw.health_extras())
    return to_response(JsonReply.of(summary))


async def metrics(request: Request) -> Response:
    gw = gateway(request)
    token = gw.settings.metrics_token
    if token and not TokenGuard([token]).check(bearer(request.headers)):
        return to_response(JsonReply.of({"error": {"message": "missing or invalid metrics token"}}, 401))
    body = gw.metrics.render(await gw.keys.summary(), gw.events.stats())
    return Response(body, 200, media_type=gw.metrics.CONTENT_TYPE)


async def root(request: Request) -> Response:
    return to_response(JsonReply.of({"service": "gemini-gateway", "status": "ok"}))


def routes() -> list[Route]:
    return [Route("/health", health, methods=["GET"]), Route("/metrics", metrics, methods=["GET"]),
            Route("/", root, methods=["GET", "HEAD"]), Route("/hf/health", health, methods=["GET"]),
            Route("/hf", root, methods=["GET", "HEAD"]), Route("/hf/", root, methods=["GET", "HEAD"])]
