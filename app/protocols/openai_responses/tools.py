"""Responses ``tools`` / ``tool_choice`` -> Gemini ``tools`` / ``toolConfig``.

Every tool kind an agent declares becomes something Gemini can call, and the answer comes back in the kind's
own output item (``kinds`` remembers which): flat ``function`` tools are declarations (schema forwarded as
``parametersJsonSchema``); ``custom`` (freeform, e.g. Codex's ``apply_patch``) is a function with one string
argument ``input``; ``local_shell`` and ``shell`` are functions taking a command list; ``web_search*`` is
Google Search grounding and ``code_interpreter`` is code execution. Native Gemini tool objects pass through.
A kind with no sensible mapping (file_search, computer use, image generation, mcp ...) is a 400 naming it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from app.protocols.openai_chat.errors import RequestError
from app.protocols.openai_chat.tools import NATIVE_TOOL_KEYS

__all__ = ["ToolSet", "namespaced_name", "tool_config", "translate_tools"]

_SCHEMA_DROP = ("$schema",)
_CUSTOM_PARAMS = {"type": "object", "properties": {"input": {"type": "string", "description":
                  "the complete raw input for this tool, exactly as its description asks"}}, "required": ["input"]}
_LOCAL_SHELL_PARAMS = {"type": "object", "properties": {
    "command": {"type": "array", "items": {"type": "string"}, "description": "argv of the command to run"},
    "working_directory": {"type": "string"}, "timeout_ms": {"type": "integer"}}, "required": ["command"]}
_SHELL_PARAMS = {"type": "object", "properties": {
    "commands": {"type": "array", "items": {"type": "string"}, "description": "shell commands to run in order"},
    "timeout_ms": {"type": "integer"}}, "required": ["commands"]}
_SHELL_DOC = "Run shell commands on the user's machine and read their output."
_HOSTED = {"web_search": "googleSearch", "web_search_preview": "googleSearch",
           "web_search_2025_08_26": "googleSearch", "web_search_preview_2025_03_11": "googleSearch",
           "code_interpreter": "codeExecution"}


@dataclass
class ToolSet:
    """What the Gemini body gets, and how each declared function name answers back (its item kind)."""

    declarations: list[dict[str, Any]] = field(default_factory=list)
    native: list[dict[str, Any]] = field(default_factory=list)
    kinds: dict[str, str] = field(default_factory=dict)  # function name -> function|custom|local_shell|shell
    namespaced: dict[str, tuple[str, str]] = field(default_factory=dict)  # Gemini name -> (namespace, name)

    def kind(self, gemini_name: str) -> str:
        return self.kinds.get(gemini_name, "function")

    def gemini_tools(self) -> list[dict[str, Any]]:
        tools: list[dict[str, Any]] = [{"functionDeclarations": self.declarations}] if self.declarations else []
        return tools + self.native


def _declare(tools: ToolSet, name: Any, kind: str, description: Any, params: Any, where: str) -> None:
    if not isinstance(name, str) or not name:
        raise RequestError("the tool needs a non-empty string name", f"{where}.name")
    if name in tools.kinds:
        raise RequestError(f"tool name {name!r} is declared twice", f"{where}.name")
    declaration: dict[str, Any] = {"name": name}
    if isinstance(description, str) and description:
        declaration["description"] = description
    if params is not None:
        if not isinstance(params, Mapping):
            raise RequestError("parameters must be a JSON Schema object", f"{where}.parameters")
        if params:
            declaration["parametersJsonSchema"] = {k: v for k, v in params.items() if k not in _SCHEMA_DROP}
    tools.declarations.append(declaration)
    tools.kinds[name] = kind


def _custom_description(tool: Mapping[str, Any]) -> str:
    """The description plus the grammar, so Gemini writes input the client's parser accepts."""
    text = str(tool.get("description") or "")
    fmt = tool.get("format")
    if isinstance(fmt, Mapping) and fmt.get("type") == "grammar" and isinstance(fmt.get("definition"), str):
        text += (f"\n\nThe input must match this {fmt.get('syntax') or 'grammar'} grammar:\n"
                 + fmt["definition"])
    return text.strip()


def namespaced_name(namespace: str, name: str) -> str:
    """The one Gemini function name of a tool inside a ``namespace`` tool (Gemini has no namespaces)."""
    return f"{namespace}__{name}"


def _namespace(tools: ToolSet, tool: Mapping[str, Any], where: str) -> None:
    """A ``namespace`` tool (Codex groups MCP and app tools this way): each member is declared flat."""
    namespace = tool.get("name")
    if not isinstance(namespace, str) or not namespace:
        raise RequestError("a namespace tool needs a name", f"{where}.name")
    members = tool.get("tools")
    if not isinstance(members, list):
        raise RequestError("a namespace tool needs a tools array", f"{where}.tools")
    for j, member in enumerate(members):
        at = f"{where}.tools[{j}]"
        if not isinstance(member, Mapping) or member.get("type") not in ("function", "custom"):
            raise RequestError("namespace members must be function or custom tools", f"{at}.type")
        name = member.get("name")
        if not isinstance(name, str) or not name:
            raise RequestError("the tool needs a non-empty string name", f"{at}.name")
        flat = namespaced_name(namespace, name)
        if member["type"] == "custom":
            _declare(tools, flat, "custom", _custom_description(member), _CUSTOM_PARAMS, at)
        else:
            _declare(tools, flat, "function", member.get("description"), member.get("parameters"), at)
        tools.namespaced[flat] = (namespace, name)


def translate_tools(value: Any) -> ToolSet:
    tools = ToolSet()
    if value is None:
        return tools
    if not isinstance(value, list):
        raise RequestError("tools must be an array", "tools")
    native_seen: set[str] = set()
    for i, tool in enumerate(value):
        where = f"tools[{i}]"
        if not isinstance(tool, Mapping):
            raise RequestError("each tool must be an object", where)
        kind = tool.get("type")
        if kind == "function":
            _declare(tools, tool.get("name"), "function", tool.get("description"), tool.get("parameters"), where)
        elif kind == "custom":
            _declare(tools, tool.get("name"), "custom", _custom_description(tool), _CUSTOM_PARAMS, where)
        elif kind == "local_shell":
            _declare(tools, "local_shell", "local_shell", _SHELL_DOC, _LOCAL_SHELL_PARAMS, where)
        elif kind == "shell":
            _declare(tools, "shell", "shell", _SHELL_DOC, _SHELL_PARAMS, where)
        elif kind == "namespace":
            _namespace(tools, tool, where)
        elif kind in _HOSTED:
            native = _HOSTED[kind]
            if native not in native_seen:
                native_seen.add(native)
                tools.native.append({native: {}})
        elif kind is None and len(tool) == 1 and next(iter(tool)) in NATIVE_TOOL_KEYS:
            key = next(iter(tool))
            native = NATIVE_TOOL_KEYS[key]
            if native not in native_seen:
                native_seen.add(native)
                tools.native.append({native: dict(tool[key] or {})})
        else:
            raise RequestError(f"tool type {kind!r} has no Gemini counterpart on this gateway; supported: "
                               "function, custom, namespace, local_shell, shell, web_search, code_interpreter",
                               f"{where}.type")
    return tools


def _chosen_name(choice: Mapping[str, Any], where: str) -> str:
    kind = choice.get("type")
    if kind in ("local_shell", "shell"):
        return str(kind)
    name = choice.get("name")
    if not isinstance(name, str) or not name:
        raise RequestError("a named tool_choice needs a name", f"{where}.name")
    return name


def tool_config(choice: Any, tools: ToolSet) -> dict[str, Any] | None:
    """``functionCallingConfig`` for ``tool_choice`` (none/auto/required, a named tool, allowed_tools)."""
    if choice is None:
        return None
    names: list[str] = []
    if isinstance(choice, str):
        mode = {"auto": "AUTO", "none": "NONE", "required": "ANY"}.get(choice)
        if mode is None:
            raise RequestError(f"invalid tool_choice {choice!r}: use 'auto', 'none', 'required' or an object",
                               "tool_choice")
    elif isinstance(choice, Mapping) and choice.get("type") == "allowed_tools":
        mode = {"auto": "AUTO", "required": "ANY"}.get(str(choice.get("mode", "auto")))
        if mode is None:
            raise RequestError("allowed_tools.mode must be 'auto' or 'required'", "tool_choice.mode")
        listed = choice.get("tools")
        if not isinstance(listed, list) or not listed:
            raise RequestError("allowed_tools needs a non-empty tools array", "tool_choice.tools")
        for j, entry in enumerate(listed):
            if not isinstance(entry, Mapping):
                raise RequestError("each allowed tool must be an object", f"tool_choice.tools[{j}]")
            if entry.get("type") in ("function", "custom", "local_shell", "shell"):
                names.append(_chosen_name(entry, f"tool_choice.tools[{j}]"))
    elif isinstance(choice, Mapping) and choice.get("type") in ("function", "custom", "local_shell", "shell"):
        mode, names = "ANY", [_chosen_name(choice, "tool_choice")]
    elif isinstance(choice, Mapping) and choice.get("type") in _HOSTED:
        return None  # a hosted tool is always available to Gemini; there is no call to force
    else:
        raise RequestError("unsupported tool_choice", "tool_choice")
    if not tools.declarations:
        if mode == "ANY" and not tools.native:
            raise RequestError("tool_choice requires a tool call but no tools were given", "tool_choice")
        return None
    unknown = [n for n in names if n not in tools.kinds]
    if unknown:
        raise RequestError(f"tool_choice names {unknown[0]!r}, which is not among the tools", "tool_choice")
    config: dict[str, Any] = {"mode": mode}
    if names:
        config["allowedFunctionNames"] = names
    return {"functionCallingConfig": config}
