"""The operator's view of the key pool: JSON API and a small page. Every route needs ``AUTH_TOKEN``.

Keys are shown and addressed only by id; a raw key is accepted (to add it) but never returned.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.errors import GatewayError, InvalidRequest, NotFound, Unauthenticated
from app.console.session import COOKIE
from app.keys import UnknownKey, key_id
from app.keys.validate import KeyFormatError, checked_keys
from app.routes.common import gateway, read_json
from app.routes.responses import to_response
from app.security import bearer
from app.services.replies import JsonReply
from app.surfaces import Surface, json_response

CONSOLE = Path(__file__).resolve().parents[1] / "console"
#: The console's files, read once; served with a strict CSP (no inline script, nothing from elsewhere).
_STATIC = {name: (CONSOLE / name).read_bytes() for name in ("index.html", "console.css", "console.js")}
_TYPES = {"html": "text/html; charset=utf-8", "css": "text/css; charset=utf-8",
          "js": "text/javascript; charset=utf-8"}
_PAGE_HEADERS = {"content-security-policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
                 "x-content-type-options": "nosniff", "referrer-policy": "no-referrer", "cache-control": "no-store"}


def render(exc: GatewayError) -> Response:
    return json_response(exc.status, {"error": {"message": exc.message, "code": exc.status}}, exc.headers())


def authenticate(request: Request) -> None:
    """The admin token (Bearer or ``x-admin-token``), or the console's session cookie. A cookie-carried call
    that changes something must also send ``x-console: 1``, which no cross-site form can (with SameSite=Strict,
    a second line against CSRF)."""
    gw = gateway(request)
    token = bearer(request.headers) or request.headers.get("x-admin-token")
    if not gw.admin_guard.configured:
        raise Unauthenticated("the admin API is closed: set AUTH_TOKEN (a client token never opens it)")
    if token is None and gw.console_sessions.valid(request.cookies.get(COOKIE)):
        if request.method not in ("GET", "HEAD") and request.headers.get("x-console") != "1":
            raise Unauthenticated("a console session call that changes something must send 'x-console: 1'")
        return
    if not gw.admin_guard.check(token):
        raise Unauthenticated("missing or invalid admin token (or console session expired)")


SURFACE = Surface("admin", render, authenticate)


async def keys(request: Request) -> Response:
    gw = gateway(request)
    rows = [{**entry, **gw.routes.view(entry["id"])} for entry in await gw.keys.snapshot()]  # kind, masked proxy
    return to_response(JsonReply.of({"keys": rows, "summary": await gw.keys.summary(),
                                     "prober": gw.prober.stats()}))


async def add_key(request: Request) -> Response:
    gw = gateway(request)
    payload = await read_json(request, 64 * 1024)
    key = payload.get("key") if isinstance(payload, dict) else None
    if not isinstance(key, str) or not key.strip():
        raise InvalidRequest("'key' must be a non-empty string", param="key")
    try:
        keys = checked_keys(key)  # a pasted list is several keys; all are checked before any is added
    except KeyFormatError as exc:
        raise InvalidRequest(f"'key': {exc}", param="key") from None
    project = payload.get("project")
    project = project if isinstance(project, str) else None
    if gw.durable is None:
        ids = [gw.keys.add_key(k, project) for k in keys]
        return to_response(JsonReply.of({"id": ids[0], "ids": ids}, 201))
    result = await gw.durable.store.add_keys(keys, project)  # kept, and seen by every worker and replica
    if result.refused:
        raise InvalidRequest(f"'key' refused: {result.refused[0]['reason']}", param="key")
    await gw.durable.refresh()
    ids = list(dict.fromkeys(key_id(k) for k in keys))  # in the order pasted
    return to_response(JsonReply.of({"id": ids[0], "ids": ids}, 201))


async def key_action(request: Request) -> Response:
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
            raise NotFound(f"unknown action {action!r}")
    except (UnknownKey, KeyError):
        raise NotFound(f"no key with id {key_id!r}") from None
    return to_response(JsonReply.of({"id": key_id, "done": action or "removed"}))


async def page(request: Request) -> Response:
    name = request.path_params.get("name", "index.html")
    body = _STATIC.get(name)
    if body is None:
        raise NotFound(f"no console file {name!r}")
    return Response(body, 200, _PAGE_HEADERS, _TYPES[name.rpartition(".")[2]])


async def login(request: Request) -> Response:
    """Trade the admin token for a session cookie (HttpOnly, SameSite=Strict, expiring); a client token, or
    any other, is refused."""
    gw = gateway(request)
    payload = await read_json(request, 4096)
    token = payload.get("token") if isinstance(payload, dict) else None
    if not isinstance(token, str) or not token:
        raise InvalidRequest("'token' must be the admin token (AUTH_TOKEN)", param="token")
    if not gw.admin_guard.configured:
        raise Unauthenticated("the admin console is closed: set AUTH_TOKEN")
    if not gw.admin_guard.check(token):
        raise Unauthenticated("not the admin token (a client token never opens the console)")
    ttl = gw.console_sessions.ttl
    response = json_response(200, {"ok": True, "expires_in": int(ttl)})
    secure = request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"
    response.set_cookie(COOKIE, gw.console_sessions.issue(), max_age=int(ttl), path="/", httponly=True,
                        samesite="strict", secure=secure)
    return response


async def logout(request: Request) -> Response:
    response = json_response(200, {"ok": True})
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


def routes() -> list[Route]:
    return [SURFACE.route("/admin", page, ["GET"], auth=False),
            SURFACE.route("/admin/console/{name}", page, ["GET"], auth=False),
            SURFACE.route("/admin/login", login, ["POST"], auth=False),
            SURFACE.route("/admin/logout", logout, ["POST"], auth=False),
            SURFACE.route("/admin/keys", keys, ["GET"]),
            SURFACE.route("/admin/keys", add_key, ["POST"]),
            SURFACE.route("/admin/keys/{key_id}", key_action, ["DELETE"]),
            SURFACE.route("/admin/keys/{key_id}/{action}", key_action, ["POST"])]
