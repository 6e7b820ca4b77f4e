"""The fake's model catalogue: the recorded ``models.list`` page plus a synthesised embedding model.

The recorded page holds exactly 50 models (the default ``pageSize``) and a ``nextPageToken``. Appending
one more model means the default first page equals the recording, token included, and a second page exists,
so clients' pagination is exercised against real shapes. Page tokens are built like Google's: base64 of a
tiny protobuf (field 1, the last model name of the previous page).
"""

from __future__ import annotations

import base64
import copy
from dataclasses import dataclass
from typing import Any

from . import fixtures

MODELS_FIXTURE = "native/models-list__page1__decoded-body__llm-gemini.json"
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000

# Not in the recording (retired by Google in 2026, still named by many OpenAI-compat clients).
SYNTHETIC_MODELS: list[dict[str, Any]] = [
    {
        "name": "models/text-embedding-004",
        "version": "004",
        "displayName": "Text Embedding 004",
        "description": "Obtain a distributed representation of a text.",
        "inputTokenLimit": 2048,
        "outputTokenLimit": 1,
        "supportedGenerationMethods": ["embedContent", "countTextTokens"],
    }
]


class PageTokenError(ValueError):
    """A ``pageToken`` that this catalogue did not hand out."""


def encode_page_token(last_name: str) -> str:
    """Google's token shape: base64(``0x0a <len> name``)."""
    raw = last_name.encode("utf-8")
    return base64.b64encode(b"\n" + bytes([len(raw)]) + raw).decode("ascii")


def decode_page_token(token: str) -> str:
    """The model name a token points after."""
    try:
        raw = base64.b64decode(token + "=" * (-len(token) % 4), validate=False)
    except ValueError as exc:
        raise PageTokenError(token) from exc
    if len(raw) < 2 or raw[0] != 0x0A or raw[1] != len(raw) - 2:
        raise PageTokenError(token)
    return raw[2:].decode("utf-8", errors="replace")


@dataclass
class Catalog:
    """Models by bare id, in listing order."""

    models: list[dict[str, Any]]

    @classmethod
    def load(cls, extra_models: list[str] | None = None) -> Catalog:
        recorded = fixtures.load_json(MODELS_FIXTURE)["models"]
        models = copy.deepcopy(recorded) + copy.deepcopy(SYNTHETIC_MODELS)
        known = {m["name"] for m in models}
        for model_id in extra_models or []:
            name = f"models/{model_id}"
            if name not in known:
                models.append(_generic_model(model_id))
                known.add(name)
        return cls(models)

    def __post_init__(self) -> None:
        self._by_id = {m["name"].removeprefix("models/"): m for m in self.models}

    def get(self, model_id: str) -> dict[str, Any] | None:
        """The Model object for a bare id (or ``models/<id>``), or None."""
        return self._by_id.get(model_id.removeprefix("models/"))

    def supports(self, model_id: str, method: str) -> bool:
        """Whether the model lists ``method`` in ``supportedGenerationMethods``."""
        model = self.get(model_id)
        return model is not None and method in model.get("supportedGenerationMethods", [])

    def page(self, page_size: int | None, page_token: str | None) -> dict[str, Any]:
        """One ``models.list`` page; ``nextPageToken`` only when more models follow."""
        size = DEFAULT_PAGE_SIZE if not page_size or page_size <= 0 else min(page_size, MAX_PAGE_SIZE)
        start = 0
        if page_token:
            last = decode_page_token(page_token)
            names = [m["name"] for m in self.models]
            if last not in names:
                raise PageTokenError(page_token)
            start = names.index(last) + 1
        chunk = self.models[start : start + size]
        body: dict[str, Any] = {"models": chunk}
        if start + size < len(self.models) and chunk:
            body["nextPageToken"] = encode_page_token(chunk[-1]["name"])
        return body


def _generic_model(model_id: str) -> dict[str, Any]:
    """A plausible Model entry for a test-only model id (``--extra-model``)."""
    embedding = "embedding" in model_id
    methods = ["embedContent", "countTokens"] if embedding else ["generateContent", "countTokens"]
    return {
        "name": f"models/{model_id}",
        "version": "001",
        "displayName": model_id,
        "description": "Test-only model added to the fake's catalogue.",
        "inputTokenLimit": 1048576,
        "outputTokenLimit": 65536,
        "supportedGenerationMethods": methods,
    }
