"""Embeddings (request + recorded responses, float and base64) and the model list."""

from __future__ import annotations

import base64
import json
from array import array
from typing import Any

import pytest

from app.protocols.openai_chat.embeddings import (
    embeddings_from_gemini,
    estimate_tokens,
    merge_batches,
    parse_embeddings_request,
    split_batch,
)
from app.protocols.openai_chat.errors import RequestError
from app.protocols.openai_chat.models import model_from_gemini, models_from_gemini
from tests.unit.protocols.openai_chat.fixture_support import request_body, response_json


def test_request_matches_llm_gemini_recorded_body() -> None:
    recorded = request_body("native/batchEmbedContents__768__gemini-embedding-001__llm-gemini.yaml")
    model, body, encoding, requested = parse_embeddings_request(
        {"model": "gemini-embedding-001", "input": "Some text goes here", "dimensions": 768}
    )
    assert (model, encoding, requested) == ("gemini-embedding-001", "float", "gemini-embedding-001")
    assert body == {
        "requests": [
            {
                "model": "models/gemini-embedding-001",
                "content": {"parts": [{"text": "Some text goes here"}]},
                "outputDimensionality": 768,
            }
        ]
    }
    assert body == recorded


def test_request_matches_pydantic_ai_recorded_body_with_task_type() -> None:
    recorded = request_body(
        "native/batchEmbedContents__outputDimensionality-768__gemini-embedding-2-preview__pydantic-ai.yaml"
    )
    _, body, encoding, requested = parse_embeddings_request(
        {
            "model": "models/gemini-embedding-2-preview",
            "input": ["Hello, world!"],
            "dimensions": 768,
            "encoding_format": "base64",
            "extra_body": {"google": {"task_type": "retrieval_query"}},
            "user": "x",
        }
    )
    assert body == recorded
    assert encoding == "base64" and requested == "models/gemini-embedding-2-preview"


@pytest.mark.parametrize(
    "payload,param",
    [
        ({"input": "x"}, "model"),
        ({"model": "bad name", "input": "x"}, "model"),
        ({"model": "m"}, "input"),
        ({"model": "m", "input": []}, "input"),
        ({"model": "m", "input": [1, 2, 3]}, "input"),
        ({"model": "m", "input": [[1, 2], [3]]}, "input"),
        ({"model": "m", "input": ["a", 3]}, "input[1]"),
        ({"model": "m", "input": ""}, "input"),
        ({"model": "m", "input": ["a", ""]}, "input[1]"),
        ({"model": "m", "input": "x", "encoding_format": "int8"}, "encoding_format"),
        ({"model": "m", "input": "x", "dimensions": 0}, "dimensions"),
        ({"model": "m", "input": "x", "google": {"task_type": "poetry"}}, "google.task_type"),
    ],
)
def test_bad_embedding_requests(payload: dict, param: str) -> None:
    with pytest.raises(RequestError) as caught:
        parse_embeddings_request(payload)
    assert caught.value.param == param
    if (
        param == "input"
        and isinstance(payload.get("input"), list)
        and payload["input"]
        and not isinstance(payload["input"][0], str)
    ):
        assert "token" in str(caught.value)


@pytest.mark.parametrize(
    "name",
    [
        "native/batchEmbedContents__768__gemini-embedding-001__decoded-body__llm-gemini.json",
        "native/batchEmbedContents__outputDimensionality-768__gemini-embedding-2-preview__pydantic-ai.yaml",
    ],
)
def test_recorded_embeddings_float_and_base64(name: str) -> None:
    resp = response_json(name)
    values = resp["embeddings"][0]["values"]
    assert len(values) == 768
    floats = embeddings_from_gemini(
        resp, model="client-model", encoding_format="float", inputs_text=["Hello, world!"]
    )
    assert floats["object"] == "list" and floats["model"] == "client-model"
    assert floats["data"] == [{"object": "embedding", "index": 0, "embedding": values}]
    assert floats["usage"] == {"prompt_tokens": 4, "total_tokens": 4}
    encoded = embeddings_from_gemini(resp, model="m", encoding_format="base64")
    blob = base64.b64decode(encoded["data"][0]["embedding"])
    assert len(blob) == 768 * 4
    decoded = array("f")
    decoded.frombytes(blob)  # the SDK's own fallback decoding (little-endian float32)
    assert decoded.tolist() == pytest.approx(values, rel=1e-6)
    assert encoded["usage"] == {"prompt_tokens": 0, "total_tokens": 0}
    json.dumps(encoded)


def test_single_embed_content_shape_and_missing_data() -> None:
    single = embeddings_from_gemini(
        {"embedding": {"values": [0.5, -1.0]}}, model="m", encoding_format="float"
    )
    assert single["data"] == [{"object": "embedding", "index": 0, "embedding": [0.5, -1.0]}]
    assert embeddings_from_gemini({}, model="m", encoding_format="float")["data"] == []


def test_batch_splitting_and_usage_estimate() -> None:
    _, body, _, _ = parse_embeddings_request({"model": "m", "input": [f"text {i}" for i in range(250)]})
    pieces = split_batch(body)
    assert [len(p["requests"]) for p in pieces] == [100, 100, 50]
    merged = merge_batches(
        [{"embeddings": [{"values": [float(i)]} for i in range(len(p["requests"]))]} for p in pieces]
    )
    assert len(merged["embeddings"]) == 250
    assert estimate_tokens(["abcd", "abcde", ""]) == 1 + 2 + 0


def test_model_list_from_recorded_page() -> None:
    models = response_json("native/models-list__page1__decoded-body__llm-gemini.json")["models"]
    listed = models_from_gemini(models, search_models={"gemini-2.5-flash", "gemini-unknown"}, created=1234)
    assert listed["object"] == "list"
    ids = [m["id"] for m in listed["data"]]
    assert ids[:2] == ["gemini-2.5-flash", "gemini-2.5-flash-search"]
    assert "gemini-unknown-search" not in ids
    assert "gemini-embedding-001" in ids and "gemini-3-pro-preview" in ids and "gemini-flash-latest" in ids
    assert not any(i.startswith(("imagen", "veo", "aqa", "models/")) for i in ids)
    usable = [
        m
        for m in models
        if {"generateContent", "embedContent"} & set(m.get("supportedGenerationMethods", []))
    ]
    assert len(ids) == len(usable) + 1
    first, search = listed["data"][:2]
    assert first == {
        "id": "gemini-2.5-flash",
        "object": "model",
        "created": 1234,
        "owned_by": "google",
        "display_name": "Gemini 2.5 Flash",
    }
    assert search["display_name"] == "Gemini 2.5 Flash (Google Search)"


def test_embedding_models_get_no_search_twin() -> None:
    models: list[Any] = [
        {"name": "models/gemini-embedding-001", "supportedGenerationMethods": ["embedContent"]},
        "junk",
    ]
    assert [m["id"] for m in models_from_gemini(models, search_models={"gemini-embedding-001"})["data"]] == [
        "gemini-embedding-001"
    ]


def test_single_model() -> None:
    assert model_from_gemini({"name": "models/gemini-2.5-pro", "displayName": "Gemini 2.5 Pro"}) == {
        "id": "gemini-2.5-pro",
        "object": "model",
        "created": 0,
        "owned_by": "google",
        "display_name": "Gemini 2.5 Pro",
    }
    assert model_from_gemini({"name": "tunedModels/x"}) == {
        "id": "tunedModels/x",
        "object": "model",
        "created": 0,
        "owned_by": "google",
    }
