"""OpenAI ``tools``/``tool_choice`` (and legacy ``functions``/``function_call``) -> Gemini tools, toolConfig.

Parameters go out as ``parametersJsonSchema``: Gemini accepts a full JSON Schema there (``$ref``, ``anyOf``,
``additionalProperties`` …), so the client's schema is forwarded nearly untouched instead of being squeezed
into the OpenAPI-subset ``parameters`` Schema, which rejects many keywords (docs/architecture.md, Wire notes). Only ``$schema``
is removed (a meta-schema URI is not part of the tool's contract and trips the validator).

Gemini-native tool objects (``{"googleSearch": {}}``, ``{"codeExecution": {}}``, ``{"urlContext": {}}``) are
accepted in ``tools`` as-is, so a client that knows Gemini can switch them on per request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.protocols.openai_chat.errors import RequestError, bounded

__all__ = ["NATIVE_TOOL_KEYS", "function_declarations", "tool_config"]

# Native Gemini tool kinds a client may pass through, with the snake_case spellings the API also accepts.
NATIVE_TOOL_KEYS = {
    "googleSearch": "googleSearch", "google_search": "googleSearch",
    "codeExecution": "codeExecution", "code_execution": "codeExecution",
    "urlContext": "urlContext", "url_context": "urlContext",
}
_SCHEMA_DROP = ("$schema",)


def _declaration(function: Any, param: str) -> dict[str, Any]:
    if not isinstance(function, Mapping):
        raise RequestError("function must be an object with a name", param)
    name = function.get("name")
    if not isinstance(name, str) or not name:
        raise RequestError("function.name must be a non-empty string", f"{param}.name")
    declaration: dict[str, Any] = {"name": name}
    description = function.get("description")
    if isinstance(description, str) and description:
        declaration["description"] = description
    parameters = function.get("parameters")
    if parameters is not None:
        if not isinstance(parameters, Mapping):
            raise RequestError("function.parameters must be a JSON Schema object", f"{param}.parameters")
        if parameters:
            declaration["parametersJsonSchema"] = bounded(
                {k: v for k, v in parameters.items() if k not in _SCHEMA_DROP}, f"{param}.parameters")
    return declaration


def function_declarations(payload: Mapping[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(functionDeclarations, native Gemini tools) from ``tools`` and legacy ``functions``."""
    declarations: list[dict[str, Any]] = []
    native: list[dict[str, Any]] = []
    tools = payload.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise RequestError("tools must be an array", "tools")
        for i, tool in enumerate(tools):
            where = f"tools[{i}]"
            if not isinstance(tool, Mapping):
                raise RequestError("each tool must be an object", where)
            kind = tool.get("type")
            if kind == "function":
                declarations.append(_declaration(tool.get("function"), f"{where}.function"))
                continue
            if kind is None:
                keys = [k for k in tool if k in NATIVE_TOOL_KEYS]
                if len(keys) == 1 and len(tool) == 1:
                    value = tool[keys[0]]
                    if value is not None and not isinstance(value, Mapping):
                        raise RequestError(f"{keys[0]} must be an object (its options, often {{}})",
                                           f"{where}.{keys[0]}")
                    options = bounded(dict(value or {}), f"{where}.{keys[0]}")
                    native.append({NATIVE_TOOL_KEYS[keys[0]]: options})
                    continue
            raise RequestError(f"unsupported tool type {kind!r}: only 'function' tools (or native Gemini "
                               "googleSearch/codeExecution/urlContext objects) are supported",
                               f"{where}.type")
    functions = payload.get("functions")
    if functions is not None:
        if not isinstance(functions, list):
            raise RequestError("functions must be an array", "functions")
        declarations.extend(_declaration(f, f"functions[{i}]") for i, f in enumerate(functions))
    names = [d["name"] for d in declarations]
    if len(set(names)) != len(names):
        raise RequestError("tool function names must be unique", "tools")
    return declarations, native


def _named(choice: Mapping[str, Any], param: str) -> str:
    function = choice.get("function")
    name = function.get("name") if isinstance(function, Mapping) else choice.get("name")
    if not isinstance(name, str) or not name:
        raise RequestError("a named tool_choice needs function.name", param)
    return name


def tool_config(payload: Mapping[str, Any], declared: list[str]) -> dict[str, Any] | None:
    """``toolConfig`` for ``tool_choice`` (or legacy ``function_call``); None when Gemini's default fits.

    auto -> AUTO, none -> NONE, required -> ANY, a named function -> ANY + allowedFunctionNames. Without
    declared functions a choice that *forces* a call cannot be honoured and is refused.
    """
    param = "tool_choice" if payload.get("tool_choice") is not None else "function_call"
    choice = payload.get(param)
    if choice is None:
        return None
    if isinstance(choice, str):
        mode = {"auto": "AUTO", "none": "NONE", "required": "ANY"}.get(choice)
        if mode is None:
            raise RequestError(f"invalid {param} {choice!r}: use 'auto', 'none', 'required' or a named "
                               "function", param)
        names: list[str] = []
    elif isinstance(choice, Mapping) and choice.get("type", "function") == "function":
        mode, names = "ANY", [_named(choice, param)]
    else:
        raise RequestError(f"unsupported {param}; use 'auto', 'none', 'required' or "
                           "{'type': 'function', 'function': {'name': …}}", param)
    if not declared:
        if mode == "ANY":
            raise RequestError(f"{param} requires a tool call but no tools were given", param)
        return None
    unknown = [n for n in names if n not in declared]
    if unknown:
        raise RequestError(f"{param} names function {unknown[0]!r}, which is not among the tools", param)
    config: dict[str, Any] = {"mode": mode}
    if names:
        config["allowedFunctionNames"] = names
    return {"functionCallingConfig": config}
