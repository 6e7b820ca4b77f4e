"""The operator's view of the key pool: JSON API and a small page. Every route needs ``AUTH_TOKEN``.

Keys are shown and addressed only by id; a raw key is accepted (to add it) but never returned.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from app.keys import UnknownKey
from app.routes.common import BodyError, gateway, read_json
from app.routes.responses import to_response
from app.security import bearer
from app.services.replies import JsonReply

PAGE = Path(__file__).with_name("admin.html")


def _error(status: int, message: str) -> Response:
    return to_response(JsonReply.of({"error": {"message": message, "code": status}}, status))


def _denied(request: Request) -> Response | None:
    gw = gateway(request)
    token = bearer(request.headers) or request.headers.get("x-admin-token")
    if not gw.admin_guard.configured:
        return _error(401, "no AUTH_TOKEN (or ALLOWED_TOKENS) is configured, so the admin API is closed")
    if not gw.admin_guard.check(token):
        return _error(401, "missing or invalid admin token")
    return None


async def keys(request: Request) -> Response:
    if (denied := _denied(request)) is not None:
        return denied
    gw = gateway(request)
    return to_response(JsonReply.of({"keys": await gw.keys.snapshot(), "summary": await gw.keys.summary(),
                                     "prober": gw.prober.stats()}))


async def add_key(request: Request) -> Response:
    if (denied := _denied(request)) is not None:
        return denied
    gw = gateway(request)
    try:
        payload = await read_json(request, 64 * 1024)
    except BodyError as exc:
        return _error(exc.status, str(exc))
    key = payload.get("key") if isinstance(payload, dict) else None
    if not isinstance(key, str) or not key.strip():
        return _error(400, "'key' must be a non-empty string")
    project = payload.get("project")
    project = project if isinstance(project, str) else None
    if gw.durable is None:
        key_id = gw.keys.add_key(key, project)
        return to_response(JsonReply.of({"id": key_id}, 201))
    result = await gw.durable.store.add_keys([key], project)  # kept, and seen by every worker and replica
    if result.refused:
        return _error(400, f"'key' refused: {result.refused[0]['reason']}")
    await gw.durable.refresh()
    return to_response(JsonReply.of({"id": (result.added or result.existing)[0]}, 201))


async def key_action(request: Request) -> Response:
    if (denied := _denied(request)) is not None:
        return denied
    gw = gateway(request)
    key_id, action = request.path_params["key_id"], request.path_params.get("action", "")
    try:
        if request.method == "DELETE" and gw.durable is not None:
            await gw.durable.store.remove_key(key_id)
            await gw.durable.refresh()
        elif request.method == "DELETE":
            if not gw.keys.remove_key(key_id):
                raise UnknownKey(key_id)
        elif action == "enable":
            await gw.keys.enable(key_id)
        elif action == "disable":
            await gw.keys.disable(key_id, "disabled by admin")
        elif action == "check":
            outcome = await gw.prober.check(key_id)
            return to_response(JsonReply.of({"id": key_id, "check": outcome.kind.value,
                                             "status": outcome.status, "reason": outcome.reason}))
        else:
            return _error(404, f"unknown action {action!r}")
    except (UnknownKey, KeyError):
        return _error(404, f"no key with id {key_id!r}")
    return to_response(JsonReply.of({"id": key_id, "done": action or "removed"}))


async def page(request: Request) -> Response:
    return HTMLResponse(PAGE.read_text(encoding="utf-8"))


def routes() -> list[Route]:
    out: list[Route] = []
    for prefix in ("", "/hf"):
        out += [Route(f"{prefix}/admin", page, methods=["GET"]),
                Route(f"{prefix}/admin/keys", keys, methods=["GET"]),
                Route(f"{prefix}/admin/keys", add_key, methods=["POST"]),
                Route(prefix + "/admin/keys/{key_id}", key_action, methods=["DELETE"]),
                Route(prefix + "/admin/keys/{key_id}/{action}", key_action, methods=["POST"])]
    return out
