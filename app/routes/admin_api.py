"""The operator's JSON API over the durable state: ``/admin/api/...``, admin token only.

Keys are addressed by id and never returned; a token's secret is returned once, by its creation. Every
change goes to the durable store and is applied here at once; other workers and replicas pick it up within
``STATE_POLL_INTERVAL``. Described by ``GET /admin/api/openapi.json``.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.errors import GatewayError, InvalidRequest
from app.net.routes import RouteError, mask_proxy, parse_kind, parse_proxy
from app.errors import NotFound as RouteNotFound
from app.routes.admin import SURFACE
from app.routes.common import gateway, read_json
from app.routes.responses import to_response
from app.services.replies import JsonReply
from app.state.durable import DurableState, NotFound
from app.state.durable.store import LIMIT_FIELDS

from .admin_api_spec import OPENAPI

_BODY_LIMIT = 1024 * 1024
_SECRET_NAME = re.compile(r"key|token|secret|password", re.IGNORECASE)


class Invalid(Exception):
    """A bad field in an admin request; the message names it."""


def _ok(obj: Any, status: int = 200) -> Response:
    return to_response(JsonReply.of(obj, status))


def _state(request: Request) -> DurableState:
    durable = gateway(request).durable
    if durable is None:
        raise LookupError("no durable store is configured (set DATA_DIR or DATABASE_URL)")
    return durable


async def _body(request: Request) -> dict[str, Any]:
    payload = await read_json(request, _BODY_LIMIT)
    if not isinstance(payload, dict):
        raise Invalid("the body must be a JSON object")
    return payload


class NoStore(GatewayError):
    status = 503
    code = "no_durable_store"


def _admin(handler):  # type: ignore[no-untyped-def]
    """The handler's own failures as gateway errors, which the admin surface renders (after its auth)."""
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except Invalid as exc:
            raise InvalidRequest(str(exc)) from None
        except NotFound as exc:
            raise RouteNotFound(f"no such id: {exc.args[0]!r}") from None
        except LookupError as exc:
            raise NoStore(str(exc)) from None
    endpoint.__name__ = handler.__name__
    return endpoint


# -- keys --------------------------------------------------------------------------------------------------

def _pasted(value: Any) -> list[str]:
    if isinstance(value, str):
        return [k for k in re.split(r"[\s,;]+", value) if k]
    if isinstance(value, list) and all(isinstance(k, str) for k in value):
        return value
    raise Invalid("'keys' must be a list of strings or one pasted string (keys separated by blanks, commas "
                  "or new lines)")


async def list_keys(request: Request) -> Response:
    state = _state(request)
    pool = {entry["id"]: entry for entry in await gateway(request).keys.snapshot()}
    rows = []
    for row in await state.store.list_keys():
        live = pool.get(row["id"])
        rows.append({**row, **gateway(request).routes.view(row["id"]),
                     "state": live["state"] if live else ("off" if not row["enabled"] else "loading"),
                     "reason": live["reason"] if live else None,
                     "cooldowns": live["cooldowns"] if live else {}})
    return _ok({"keys": rows, "total": len(rows)})


async def add_keys(request: Request) -> Response:
    state = _state(request)
    body = await _body(request)
    keys = _pasted(body.get("keys", body.get("key")))
    if not keys:
        raise Invalid("'keys' holds no key")
    project = body.get("project")
    if project is not None and not isinstance(project, str):
        raise Invalid("'project' must be a string")
    result = await state.store.add_keys(keys, project or None)
    await state.refresh()
    return _ok({"added": result.added, "existing": result.existing, "refused": result.refused},
               201 if result.added else 200)


async def key_item(request: Request) -> Response:
    state = _state(request)
    kid = request.path_params["key_id"]
    if request.method == "DELETE":
        await state.store.remove_key(kid)
        done = "removed"
    else:
        body = await _body(request)
        fields = [f for f in ("project", "proxy", "kind") if f in body]
        if not fields:
            raise Invalid("give at least one of 'project', 'proxy' or 'kind'")
        for name in fields:
            if not (body[name] is None or isinstance(body[name], str)):
                raise Invalid(f"'{name}' must be a string or null")
        route = _route_fields(body)
        if "project" in body:
            await state.store.label_key(kid, body["project"])
        if route:
            await state.store.route_key(kid, **route)
        done = "labelled" if fields == ["project"] else "updated"
    await state.refresh()
    return _ok({"id": kid, "done": done})


def _route_fields(body: dict[str, Any]) -> dict[str, str | None]:
    """The checked ``proxy`` / ``kind`` of a key PATCH; null or "" puts the key back on the settings."""
    out: dict[str, str | None] = {}
    for name, parse in (("proxy", parse_proxy), ("kind", parse_kind)):
        if name in body:
            try:
                out[name] = parse(body[name]) if body[name] else None
            except RouteError as exc:
                raise Invalid(f"'{name}': {exc}") from None
    return out


async def key_action(request: Request) -> Response:
    state = _state(request)
    kid, action = request.path_params["key_id"], request.path_params["action"]
    if action not in ("enable", "disable"):
        raise RouteNotFound(f"unknown action {action!r}: use enable or disable")
    await state.store.set_key_enabled(kid, action == "enable")
    await state.refresh()
    if action == "enable" and kid in gateway(request).keys.key_ids:
        await gateway(request).keys.enable(kid)  # also lift a disable the pool itself decided
    return _ok({"id": kid, "done": action})


# -- tokens ------------------------------------------------------------------------------------------------

def _expiry(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            if moment.tzinfo is not None:
                return moment.timestamp()
    raise Invalid("'expires_at' must be epoch seconds, an ISO 8601 time with a zone, or null")


def _token_fields(body: dict[str, Any], *, creating: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "name" in body or creating:
        name = body.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            raise Invalid("'name' must be a non-empty string of at most 200 characters")
        out["name"] = name.strip()
    if "enabled" in body:
        if not isinstance(body["enabled"], bool):
            raise Invalid("'enabled' must be true or false")
        out["enabled"] = body["enabled"]
    if "expires_at" in body:
        out["expires_at"] = _expiry(body["expires_at"])
    if "models" in body:
        models = body["models"]
        if models is None:
            models = []
        if not isinstance(models, list) or not all(isinstance(m, str) and m.strip() for m in models):
            raise Invalid("'models' must be a list of model names or glob patterns (e.g. \"gemini-2.5-*\")")
        out["models"] = [m.strip() for m in models]
    limits = body.get("limits", {})
    if not isinstance(limits, dict):
        raise Invalid("'limits' must be an object with rpm, rpd, tpm, tpd, concurrent")
    for name, value in limits.items():
        if name not in LIMIT_FIELDS:
            raise Invalid(f"'limits.{name}' is not a limit: use rpm, rpd, tpm, tpd, concurrent")
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise Invalid(f"'limits.{name}' must be a positive integer or null (unlimited)")
        out[name] = value
    return out


async def list_tokens(request: Request) -> Response:
    return _ok({"tokens": await _state(request).store.list_tokens()})


async def create_token(request: Request) -> Response:
    state = _state(request)
    fields = _token_fields(await _body(request), creating=True)
    view, secret = await state.store.create_token(
        fields["name"], expires_at=fields.get("expires_at"), models=fields.get("models", ()),
        limits={f: fields.get(f) for f in LIMIT_FIELDS})
    await state.refresh()
    return _ok({**view, "secret": secret, "note": "the secret is shown only now; it is stored hashed"}, 201)


async def token_item(request: Request) -> Response:
    state = _state(request)
    tid = request.path_params["token_id"]
    if request.method == "GET":
        return _ok(await state.store.get_token(tid))
    if request.method == "DELETE":
        await state.store.delete_token(tid)
        await state.refresh()
        return _ok({"id": tid, "done": "deleted"})
    view = await state.store.update_token(tid, **_token_fields(await _body(request), creating=False))
    await state.refresh()
    return _ok(view)


async def token_action(request: Request) -> Response:
    state = _state(request)
    tid, action = request.path_params["token_id"], request.path_params.get("action", "usage")
    if action == "usage":
        await state.flush()
        return _ok({"usage": await state.store.usage(kind="token", subject=tid,
                                                     **_usage_filters(request, with_subject=False))})
    if action not in ("enable", "disable"):
        raise RouteNotFound(f"unknown action {action!r}: use enable, disable or usage")
    view = await state.store.update_token(tid, enabled=action == "enable")
    await state.refresh()
    return _ok(view)


# -- usage, errors, settings -------------------------------------------------------------------------------

def _number(request: Request, name: str) -> float | None:
    value = request.query_params.get(name)
    if value is None or value == "":
        return None
    try:
        return float(value)
    except ValueError:
        raise Invalid(f"query parameter '{name}' must be a number (epoch seconds)") from None


def _usage_filters(request: Request, *, with_subject: bool = True) -> dict[str, Any]:
    q = request.query_params
    period = q.get("period", "hour")
    if period not in ("hour", "day"):
        raise Invalid("query parameter 'period' must be hour or day")
    out: dict[str, Any] = {"period": period, "model": q.get("model") or None,
                           "since": _number(request, "since"), "until": _number(request, "until")}
    if with_subject:
        if q.get("key") and q.get("token"):
            raise Invalid("filter by 'key' or by 'token', not both")
        out["kind"] = "token" if q.get("token") or q.get("by") == "token" else "key"
        out["subject"] = q.get("token") or q.get("key") or None
    return out


async def usage(request: Request) -> Response:
    state = _state(request)
    filters = _usage_filters(request)
    await state.flush()  # this process's buffered counts; other processes flush every USAGE_FLUSH_INTERVAL
    return _ok({"by": filters["kind"], "period": filters["period"], "usage": await state.store.usage(**filters)})


async def errors(request: Request) -> Response:
    state = _state(request)
    q = request.query_params
    limit = _number(request, "limit") or 50
    if not 1 <= limit <= 500:
        raise Invalid("query parameter 'limit' must be between 1 and 500")
    before = _number(request, "before")
    await state.flush()
    entries = await state.store.errors(key_id=q.get("key") or None, model=q.get("model") or None,
                                       kind=q.get("class") or None, before=int(before) if before else None,
                                       limit=int(limit))
    return _ok({"errors": entries, "next_before": entries[-1]["id"] if len(entries) == int(limit) else None})


def _mask_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def masked_settings(settings: Any) -> dict[str, Any]:
    """Every setting as it is in effect, with secrets replaced (counts for lists, *** for values)."""
    out: dict[str, Any] = {}
    for name, value in settings.model_dump().items():
        if name.endswith("_url") and isinstance(value, str):
            out[name] = _mask_url(value) if name != "base_url" else value
        elif name in ("key_projects", "key_proxies", "key_kinds"):  # may be keyed by raw keys
            out[name] = {"entries": len(value)}
        elif name == "outbound_proxy":
            out[name] = mask_proxy(value)
        elif _SECRET_NAME.search(name) and not isinstance(value, (int, float, bool)) or name == "api_keys":
            if isinstance(value, list):
                out[name] = {"count": len(value)}
            else:
                out[name] = "***" if value else value
        else:
            out[name] = value
    return out


async def settings_view(request: Request) -> Response:
    return _ok({"settings": masked_settings(gateway(request).settings)})


async def openapi(request: Request) -> Response:
    return _ok(OPENAPI)


def routes() -> list[Route]:
    base, route = "/admin/api", SURFACE.route
    return [
        route(f"{base}/openapi.json", _admin(openapi), ["GET"]),
        route(f"{base}/keys", _admin(list_keys), ["GET"]),
        route(f"{base}/keys", _admin(add_keys), ["POST"]),
        route(base + "/keys/{key_id}", _admin(key_item), ["DELETE", "PATCH"]),
        route(base + "/keys/{key_id}/{action}", _admin(key_action), ["POST"]),
        route(f"{base}/tokens", _admin(list_tokens), ["GET"]),
        route(f"{base}/tokens", _admin(create_token), ["POST"]),
        route(base + "/tokens/{token_id}", _admin(token_item), ["GET", "PATCH", "DELETE"]),
        route(base + "/tokens/{token_id}/usage", _admin(token_action), ["GET"]),
        route(base + "/tokens/{token_id}/{action}", _admin(token_action), ["POST"]),
        route(f"{base}/usage", _admin(usage), ["GET"]),
        route(f"{base}/errors", _admin(errors), ["GET"]),
        route(f"{base}/settings", _admin(settings_view), ["GET"]),
    ]
