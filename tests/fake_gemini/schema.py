"""A minimal instance that conforms to a schema, for JSON-mode answers and function-call arguments.

Accepts both dialects Gemini takes: the OpenAPI-subset ``Schema`` (``type: "OBJECT"``, ``nullable``,
``responseSchema``) and JSON Schema (``responseJsonSchema``/``parametersJsonSchema``: ``$ref``/``$defs``,
``anyOf``, type lists, ``const``). Tests can then validate what the gateway passes back against the schema
the client sent, without the fake knowing anything about the client.
"""

from __future__ import annotations

from typing import Any

_STRING_FORMATS = {
    "date-time": "2024-01-01T00:00:00Z",
    "date": "2024-01-01",
    "time": "00:00:00",
    "email": "x@example.com",
    "uri": "https://example.com",
    "url": "https://example.com",
    "uuid": "00000000-0000-0000-0000-000000000000",
}
_MAX_DEPTH = 12


def instance(schema: Any, *, required_only: bool = True) -> Any:
    """Generate a small value valid against ``schema`` (strings "x", numbers 1, booleans true, one item)."""
    return _instance(schema, schema if isinstance(schema, dict) else {}, required_only, 0)


def _resolve_ref(ref: str, root: dict[str, Any]) -> Any:
    if not ref.startswith("#/"):
        return {}
    node: Any = root
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            return {}
        node = node[part]
    return node


def _type_of(schema: dict[str, Any]) -> str | None:
    raw = schema.get("type")
    if isinstance(raw, list):
        non_null = [t for t in raw if str(t).lower() != "null"]
        raw = non_null[0] if non_null else "null"
    if raw is None:
        if "properties" in schema:
            return "object"
        if "items" in schema or "prefixItems" in schema:
            return "array"
        return None
    return str(raw).lower()


def _instance(schema: Any, root: dict[str, Any], required_only: bool, depth: int) -> Any:
    if not isinstance(schema, dict) or depth > _MAX_DEPTH:
        return "x"
    if "$ref" in schema:
        return _instance(_resolve_ref(schema["$ref"], root), root, required_only, depth + 1)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if options:
            non_null = [o for o in options if not (isinstance(o, dict) and _type_of(o) == "null")]
            return _instance((non_null or options)[0], root, required_only, depth + 1)
    if schema.get("allOf"):
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            part = _resolve_ref(part["$ref"], root) if isinstance(part, dict) and "$ref" in part else part
            if isinstance(part, dict):
                merged = _merge(merged, part)
        return _instance(
            _merge(merged, {k: v for k, v in schema.items() if k != "allOf"}), root, required_only, depth + 1
        )
    kind = _type_of(schema)
    if kind == "object":
        return _object(schema, root, required_only, depth)
    if kind == "array":
        return _array(schema, root, required_only, depth)
    if kind == "string":
        return _string(schema)
    if kind in ("integer", "number"):
        return _number(schema, kind)
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return "x"


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for key, value in b.items():
        if key == "properties" and isinstance(value, dict):
            out["properties"] = {**out.get("properties", {}), **value}
        elif key == "required" and isinstance(value, list):
            out["required"] = list(dict.fromkeys([*out.get("required", []), *value]))
        else:
            out[key] = value
    return out


def _object(schema: dict[str, Any], root: dict[str, Any], required_only: bool, depth: int) -> dict[str, Any]:
    properties: dict[str, Any] = schema.get("properties") or {}
    required = list(schema.get("required") or [])
    # Deep in a (possibly recursive) schema only the required properties, so the instance stays small.
    if required_only or depth > 4:
        names = required
    else:
        names = list(dict.fromkeys([*required, *properties]))
    result: dict[str, Any] = {}
    for name in names:
        result[name] = _instance(properties.get(name, {}), root, required_only, depth + 1)
    minimum = int(schema.get("minProperties") or 0)
    for name in properties:
        if len(result) >= minimum:
            break
        result.setdefault(name, _instance(properties[name], root, required_only, depth + 1))
    return result


def _array(schema: dict[str, Any], root: dict[str, Any], required_only: bool, depth: int) -> list[Any]:
    prefix = schema.get("prefixItems")
    if isinstance(prefix, list) and prefix:
        return [_instance(p, root, required_only, depth + 1) for p in prefix]
    count = max(1, int(schema.get("minItems") or 0))
    if schema.get("maxItems") is not None:
        count = min(count, int(schema["maxItems"]))
    items = schema.get("items", {})
    return [_instance(items, root, required_only, depth + 1) for _ in range(count)]


def _string(schema: dict[str, Any]) -> str:
    fmt = schema.get("format")
    if isinstance(fmt, str) and fmt in _STRING_FORMATS:
        return _STRING_FORMATS[fmt]
    length = max(1, int(schema.get("minLength") or 0))
    if schema.get("maxLength") is not None:
        length = min(length, int(schema["maxLength"]))
    return "x" * length


def _number(schema: dict[str, Any], kind: str) -> int | float:
    value: float = 1
    if schema.get("minimum") is not None and float(schema["minimum"]) > value:
        value = float(schema["minimum"])
    if schema.get("exclusiveMinimum") is not None and not isinstance(schema["exclusiveMinimum"], bool):
        if float(schema["exclusiveMinimum"]) >= value:
            value = float(schema["exclusiveMinimum"]) + 1
    if schema.get("maximum") is not None and float(schema["maximum"]) < value:
        value = float(schema["maximum"])
    if schema.get("exclusiveMaximum") is not None and not isinstance(schema["exclusiveMaximum"], bool):
        if float(schema["exclusiveMaximum"]) <= value:
            value = float(schema["exclusiveMaximum"]) - 1
    if kind == "integer" or float(value).is_integer():
        return int(value)
    return value
