"""Anthropic ``tools``/``tool_choice`` -> Gemini ``tools``/``toolConfig``.

Custom tools become ``functionDeclarations`` with ``parametersJsonSchema`` = ``input_schema``: Gemini takes a
full JSON Schema there, so only ``$schema`` (a meta-schema URI, which trips the validator) is removed.
Anthropic-only tool fields (``cache_control``, ``strict``, ``defer_loading``, ``input_examples`` …) are
dropped. Of the server tools only web search means the same on Gemini (Google Search grounding); any other
is refused with a 400 naming it, rather than silently ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.protocols.openai_chat.errors import RequestError

__all__ = ["tool_config", "translate_tools"]

_SCHEMA_DROP = frozenset({"$schema"})


def _declaration(tool: Mapping[str, Any], where: str) -> dict[str, Any]:
    name = tool.get("name")
    if not isinstance(name, str) or not name:
        raise RequestError("tools need a non-empty name", f"{where}.name")
    schema = tool.get("input_schema")
    if not isinstance(schema, Mapping):
        raise RequestError("Field required: a JSON Schema object", f"{where}.input_schema")
    declaration: dict[str, Any] = {"name": name}
    description = tool.get("description")
    if isinstance(description, str) and description:
        declaration["description"] = description
    cleaned = {k: v for k, v in schema.items() if k not in _SCHEMA_DROP}
    if cleaned.get("properties") or cleaned.get("type") != "object" or len(cleaned) > 1:
        declaration["parametersJsonSchema"] = cleaned
    return declaration


def translate_tools(tools: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(functionDeclarations, native Gemini tools such as googleSearch)."""
    if tools is None:
        return [], []
    if not isinstance(tools, list):
        raise RequestError("must be an array", "tools")
    declarations: list[dict[str, Any]] = []
    native: list[dict[str, Any]] = []
    for i, tool in enumerate(tools):
        where = f"tools.{i}"
        if not isinstance(tool, Mapping):
            raise RequestError("each tool must be an object", where)
        kind = tool.get("type")
        if kind in (None, "custom"):
            declarations.append(_declaration(tool, where))
        elif isinstance(kind, str) and kind.startswith("web_search_"):
            if not any("googleSearch" in t for t in native):
                native.append({"googleSearch": {}})
        else:
            raise RequestError(f"server tool {kind!r} ({tool.get('name')!r}) is not available on Gemini; only "
                               "custom tools and web_search are supported", f"{where}.type")
    names = [d["name"] for d in declarations]
    if len(set(names)) != len(names):
        raise RequestError("tool names must be unique", "tools")
    return declarations, native


def tool_config(choice: Any, declared: list[str]) -> dict[str, Any] | None:
    """auto -> AUTO, any -> ANY, tool -> ANY + allowedFunctionNames, none -> NONE; None when absent."""
    if choice is None:
        return None
    kind = choice.get("type") if isinstance(choice, Mapping) else None
    mode = {"auto": "AUTO", "any": "ANY", "tool": "ANY", "none": "NONE"}.get(kind) if isinstance(kind, str) \
        else None
    if mode is None:
        raise RequestError("must be {type: auto|any|tool|none}", "tool_choice.type")
    config: dict[str, Any] = {"mode": mode}
    if kind == "tool":
        name = choice.get("name")
        if not isinstance(name, str) or name not in declared:
            raise RequestError(f"names tool {name!r}, which is not among the tools", "tool_choice.name")
        config["allowedFunctionNames"] = [name]
    if not declared:
        if mode == "ANY":
            raise RequestError("requires a tool call but no tools were given", "tool_choice")
        return None
    return {"functionCallingConfig": config}
