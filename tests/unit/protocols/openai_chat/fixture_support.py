"""Loading the recorded Gemini fixtures (copied under tests/fixtures/gemini) for the translation tests.

Each recorder stores traffic its own way (VCR YAML cassettes, js-genai replay JSON, Vercel's
one-chunk-per-line JSONL, raw SSE bodies, decoded JSON-array bodies); these helpers turn every format into
plain dicts so the tests read like "this recorded response becomes this OpenAI object".
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from app.protocols.openai_chat.sse import iter_sse_data

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "gemini"


def path(name: str) -> Path:
    return FIXTURES / name


def _interactions(name: str) -> list[dict[str, Any]]:
    p = path(name)
    if p.suffix == ".yaml":
        return yaml.safe_load(p.read_text())["interactions"]
    return json.loads(p.read_text())["interactions"]


def request_body(name: str, n: int = 0) -> dict[str, Any]:
    """The request body of interaction ``n`` of a cassette/replay file."""
    request = _interactions(name)[n]["request"]
    if "parsed_body" in request:
        return request["parsed_body"]
    if "bodySegments" in request:
        return request["bodySegments"][0]
    return json.loads(request["body"])


def response_json(name: str, n: int = 0) -> Any:
    """A non-stream response body: plain JSON files, cassette ``parsed_body``, replay ``bodySegments[0]``."""
    p = path(name)
    if p.suffix == ".json" and "interactions" not in (data := json.loads(p.read_text())):
        return data
    response = _interactions(name)[n]["response"]
    if "parsed_body" in response:
        return response["parsed_body"]
    return response["bodySegments"][0]


def response_status(name: str, n: int = 0) -> int:
    response = _interactions(name)[n]["response"]
    return response["status"]["code"] if "status" in response else response["statusCode"]


def stream_chunks(name: str, n: int = 0) -> list[dict[str, Any]]:
    """Every GenerateContentResponse of a recorded stream, whatever the storage format."""
    p = path(name)
    if p.suffix == ".sse":
        return [json.loads(data) for data in iter_sse_data(p.read_bytes())]
    if p.suffix == ".jsonl":
        return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]
    if p.suffix == ".txt":  # decoded JSON-array stream body ('[{…}\n,\r\n{…}\n]')
        return json.loads(p.read_text())
    response = _interactions(name)[n]["response"]
    if "bodySegments" in response:
        return response["bodySegments"]
    return [json.loads(data) for data in iter_sse_data(response["body"]["string"])]


# -- the helpers themselves ---------------------------------------------------------------------------------
