"""Gemini ``models.list`` entries -> OpenAI ``GET /v1/models`` objects.

Only models an OpenAI client can use through this gateway are listed: those supporting ``generateContent``
(chat) or ``embedContent`` (embeddings); Imagen/Veo (``predict*``) and the like are left out. Ids drop the
``models/`` prefix (OpenAI clients send the id back as ``model``; Google's own compat layer keeps the prefix,
which many UIs then display awkwardly). Each chat model named in ``search_models`` is followed by a virtual
``<id>-search`` entry: the same model with Google Search grounding (see :mod:`app.protocols.openai_chat.chat`).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

__all__ = ["model_from_gemini", "models_from_gemini"]

_USABLE = frozenset({"generateContent", "embedContent"})


def _id(model: dict[str, Any]) -> str:
    name = str(model.get("name") or "")
    return name[len("models/"):] if name.startswith("models/") else name


def model_from_gemini(model: dict[str, Any], *, created: int = 0) -> dict[str, Any]:
    """One OpenAI model object (``display_name`` kept when Gemini has one: chat UIs show it)."""
    out: dict[str, Any] = {"id": _id(model), "object": "model", "created": created, "owned_by": "google"}
    if model.get("displayName"):
        out["display_name"] = model["displayName"]
    return out


def models_from_gemini(models: list[dict[str, Any]], *, search_models: Collection[str],
                       created: int = 0) -> dict[str, Any]:
    """The OpenAI model list, upstream order kept, each ``-search`` entry right after its base."""
    data: list[dict[str, Any]] = []
    for model in models:
        if not isinstance(model, dict):
            continue
        methods = model.get("supportedGenerationMethods") or []
        if not _USABLE.intersection(methods):
            continue
        entry = model_from_gemini(model, created=created)
        data.append(entry)
        if entry["id"] in search_models and "generateContent" in methods:
            search = {**entry, "id": entry["id"] + "-search"}
            if "display_name" in entry:
                search["display_name"] = f"{entry['display_name']} (Google Search)"
            data.append(search)
    return {"object": "list", "data": data}
