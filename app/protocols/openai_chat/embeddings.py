"""OpenAI ``POST /v1/embeddings`` <-> Gemini ``batchEmbedContents``.

Always the batch method, even for one input: one code path, and the response order matches the input order.
``encoding_format: base64`` matters because the official OpenAI SDKs ask for it by default and decode the
string as little-endian float32; ``dimensions`` maps to ``outputDimensionality`` (Gemini truncates without
re-normalising, docs/architecture.md, Wire notes). Token-array inputs are refused: Gemini embeds text, and the token ids of an
OpenAI tokenizer mean nothing to it.

Gemini returns no token usage for embeddings, so ``usage`` is an estimate: ceil(characters / 4) per input,
the usual rule of thumb for English text (documented as an estimate; 0 when the texts are not supplied).
Gemini accepts at most :data:`MAX_BATCH` requests per call; :func:`split_batch` / :func:`merge_batches` let
the service fan a larger input out and back in.
"""

from __future__ import annotations

import base64
import sys
from array import array
from collections.abc import Mapping
from typing import Any

from app.protocols.openai_chat.errors import RequestError, bounded_int
from app.protocols.openai_chat.families import bare_model

__all__ = ["MAX_BATCH", "embeddings_from_gemini", "estimate_tokens", "merge_batches",
           "parse_embeddings_request", "split_batch"]

MAX_BATCH = 100
_TASK_TYPES = frozenset({
    "RETRIEVAL_QUERY", "RETRIEVAL_DOCUMENT", "SEMANTIC_SIMILARITY", "CLASSIFICATION", "CLUSTERING",
    "QUESTION_ANSWERING", "FACT_VERIFICATION", "CODE_RETRIEVAL_QUERY",
})


def _inputs(value: Any) -> list[str]:
    if isinstance(value, str):
        texts = [value]
    elif isinstance(value, list) and value:
        tokens = all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        if tokens or any(isinstance(v, list) for v in value):
            raise RequestError("token-array inputs are not supported by Gemini embeddings; send strings",
                               "input")
        texts = value
    else:
        raise RequestError("input must be a non-empty string or array of strings", "input")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise RequestError("every input must be a string", f"input[{i}]")
        if not text:
            raise RequestError("inputs must not be empty strings",
                               f"input[{i}]" if len(texts) > 1 else "input")
    return texts


def _task_type(payload: Mapping[str, Any]) -> str | None:
    extra = payload.get("extra_body")
    block = extra.get("google") if isinstance(extra, Mapping) else None
    if not isinstance(block, Mapping):
        block = payload.get("google")
    if not isinstance(block, Mapping):
        return None
    task = block.get("task_type", block.get("taskType"))
    if task is None:
        return None
    if not isinstance(task, str) or task.upper() not in _TASK_TYPES:
        raise RequestError(f"task_type must be one of {', '.join(sorted(_TASK_TYPES))}", "google.task_type")
    return task.upper()


def parse_embeddings_request(payload: Any) -> tuple[str, dict[str, Any], str, str]:
    """(upstream model, batchEmbedContents body, encoding_format, requested model) for an OpenAI body."""
    if not isinstance(payload, Mapping):
        raise RequestError("the request body must be a JSON object")
    model = bare_model(payload.get("model"))
    requested: str = payload["model"]  # validated by bare_model
    texts = _inputs(payload.get("input"))
    encoding = payload.get("encoding_format") or "float"
    if not isinstance(encoding, str) or encoding not in ("float", "base64"):
        raise RequestError("encoding_format must be 'float' or 'base64'", "encoding_format")
    dimensions = payload.get("dimensions")
    if dimensions is not None and (isinstance(dimensions, bool) or not isinstance(dimensions, int)
                                   or dimensions < 1):
        raise RequestError("dimensions must be a positive integer", "dimensions")
    if dimensions is not None:
        bounded_int(dimensions, "dimensions")
    task = _task_type(payload)
    name = f"models/{model}"
    requests = []
    for text in texts:
        request: dict[str, Any] = {"model": name, "content": {"parts": [{"text": text}]}}
        if dimensions is not None:
            request["outputDimensionality"] = dimensions
        if task is not None:
            request["taskType"] = task
        requests.append(request)
    return model, {"requests": requests}, encoding, requested


def split_batch(body: dict[str, Any], size: int = MAX_BATCH) -> list[dict[str, Any]]:
    """Cut a batchEmbedContents body into bodies of at most ``size`` requests each."""
    requests = body.get("requests") or []
    return [{"requests": requests[i:i + size]} for i in range(0, len(requests), size)] or [body]


def merge_batches(responses: list[dict[str, Any]]) -> dict[str, Any]:
    """One batchEmbedContents response from the responses of :func:`split_batch`'s bodies, in order."""
    return {"embeddings": [e for r in responses for e in (r.get("embeddings") or [])]}


def estimate_tokens(texts: list[str]) -> int:
    """ceil(len/4) per text: a documented estimate, Gemini reports no embedding usage."""
    return sum((len(t) + 3) // 4 for t in texts)


def _encode_base64(values: list[float]) -> str:
    packed = array("f", values)
    if sys.byteorder != "little":
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode("ascii")


def embeddings_from_gemini(resp: dict[str, Any], *, model: str, encoding_format: str,
                           inputs_text: list[str] | None = None) -> dict[str, Any]:
    """OpenAI embedding list for a batchEmbedContents (or single embedContent) response."""
    if isinstance(resp.get("embeddings"), list):
        vectors = resp["embeddings"]
    elif isinstance(resp.get("embedding"), dict):
        vectors = [resp["embedding"]]
    else:
        vectors = []
    data = []
    for index, vector in enumerate(vectors):
        values = vector.get("values") if isinstance(vector, dict) else None
        values = values if isinstance(values, list) else []
        embedding: list[float] | str = _encode_base64(values) if encoding_format == "base64" else values
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    tokens = estimate_tokens(inputs_text) if inputs_text else 0
    return {"object": "list", "data": data, "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
