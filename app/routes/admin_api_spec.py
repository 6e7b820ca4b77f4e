"""The OpenAPI description of ``/admin/api`` (served at ``/admin/api/openapi.json``). Kept by hand beside the
routes: the API is small and a generator would need a framework the hot paths do without."""

from __future__ import annotations

from typing import Any

_ERR = {"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
_JSON = {"description": "ok", "content": {"application/json": {"schema": {"type": "object"}}}}


def _op(summary: str, *, body: str | None = None, params: list[str] = (), ok: int = 200) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": {str(ok): _JSON, "400": _ERR, "401": _ERR, "404": _ERR}}
    if body:
        op["requestBody"] = {"required": True, "content": {"application/json": {
            "schema": {"$ref": f"#/components/schemas/{body}"}}}}
    if params:
        op["parameters"] = [{"name": p, "in": "query", "required": False, "schema": {"type": "string"}}
                            for p in params]
    return op


_PATH_KEY = [{"name": "key_id", "in": "path", "required": True, "schema": {"type": "string"}}]
_PATH_TOKEN = [{"name": "token_id", "in": "path", "required": True, "schema": {"type": "string"}}]
_LIMITS = {"type": "object", "properties": {n: {"type": ["integer", "null"], "minimum": 1}
                                            for n in ("rpm", "rpd", "tpm", "tpd", "concurrent")}}

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "Gemini Gateway admin API", "version": "1",
             "description": "Durable operator state. Authorization: Bearer <AUTH_TOKEN>."},
    "components": {
        "securitySchemes": {"admin": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Error": {"type": "object", "properties": {"error": {"type": "object", "properties": {
                "message": {"type": "string"}, "code": {"type": "integer"}}}}},
            "AddKeys": {"type": "object", "required": ["keys"], "properties": {
                "keys": {"oneOf": [{"type": "array", "items": {"type": "string"}}, {"type": "string"}],
                         "description": "keys, or one pasted text with keys separated by blanks/commas/lines"},
                "project": {"type": "string"}}},
            "Label": {"type": "object", "minProperties": 1,
                      "properties": {"project": {"type": ["string", "null"]},
                                     "proxy": {"type": ["string", "null"],
                                               "description": "http(s)://, socks5:// URL or 'direct'; null = "
                                                              "as the settings say"},
                                     "kind": {"type": ["string", "null"], "enum": ["gemini", "vertex", None]},
                                     "weight": {"type": ["integer", "null"], "minimum": 1, "maximum": 100,
                                                "description": "share in the smooth weighted round-robin; "
                                                               "null = as the settings say (default 1)"},
                                     "tier": {"type": ["integer", "null"], "minimum": 1, "maximum": 100,
                                              "description": "1 = preferred; a higher tier serves only when "
                                                             "no key of a lower tier can; null = settings"},
                                     "models": {"type": ["array", "null"], "items": {"type": "string"},
                                                "description": "model allowlist, glob patterns; [] = every "
                                                               "model; null = as the settings say"},
                                     "exclude_models": {"type": ["array", "null"],
                                                        "items": {"type": "string"},
                                                        "description": "model blocklist, glob patterns"}}},
            "Token": {"type": "object", "properties": {
                "name": {"type": "string"}, "enabled": {"type": "boolean"},
                "expires_at": {"type": ["number", "string", "null"], "description": "epoch seconds or ISO 8601"},
                "models": {"type": "array", "items": {"type": "string"}, "description": "glob patterns"},
                "limits": _LIMITS}},
        },
    },
    "security": [{"admin": []}],
    "paths": {
        "/admin/api/keys": {"get": _op("list keys (ids, project, enabled, pool state)"),
                            "post": _op("add keys (many, deduplicated; placeholders refused)", body="AddKeys",
                                        ok=201)},
        "/admin/api/keys/{key_id}": {"parameters": _PATH_KEY, "delete": _op("remove a key"),
                                     "patch": _op("label a key: project, proxy, kind, weight, tier, model lists",
                                                   body="Label")},
        "/admin/api/keys/{key_id}/enable": {"parameters": _PATH_KEY, "post": _op("enable a key")},
        "/admin/api/keys/{key_id}/disable": {"parameters": _PATH_KEY, "post": _op("disable a key")},
        "/admin/api/tokens": {"get": _op("list client tokens (never their secrets)"),
                              "post": _op("create a token; the answer carries its secret, once", body="Token",
                                          ok=201)},
        "/admin/api/tokens/{token_id}": {"parameters": _PATH_TOKEN, "get": _op("one token"),
                                         "patch": _op("edit a token", body="Token"),
                                         "delete": _op("delete a token")},
        "/admin/api/tokens/{token_id}/enable": {"parameters": _PATH_TOKEN, "post": _op("enable a token")},
        "/admin/api/tokens/{token_id}/disable": {"parameters": _PATH_TOKEN, "post": _op("disable a token")},
        "/admin/api/tokens/{token_id}/usage": {"parameters": _PATH_TOKEN,
                                               "get": _op("a token's usage", params=["period", "model", "since",
                                                                                      "until"])},
        "/admin/api/usage": {"get": _op("usage per hour or day, per key or token and model",
                                        params=["by", "period", "key", "token", "model", "since", "until"])},
        "/admin/api/errors": {"get": _op("upstream error log, newest first; page with before=<next_before>",
                                         params=["key", "model", "class", "before", "limit"])},
        "/admin/api/settings": {"get": _op("effective settings, secrets masked")},
    },
}
