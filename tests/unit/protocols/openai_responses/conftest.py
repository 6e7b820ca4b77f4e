"""Recorded OpenAI Responses traffic, copied into tests/fixtures/openai_responses (see its SOURCES.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import yaml

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "openai_responses"


def recorded_stream_events() -> list[dict[str, Any]]:
    """Every event of the recorded gpt-5.5 raw SSE body and the four vercel-ai streams."""
    events: list[dict[str, Any]] = []
    raw = (FIXTURES / "stream__reasoning-commentary-msg-function-call__gpt-5.5__turn1__raw-body__pydantic-ai.sse")
    for line in raw.read_text().splitlines():
        if line.startswith("data: "):
            events.append(orjson.loads(line[6:]))
    jsonl = FIXTURES / ("stream-chunks__reasoning-summary-function-calls-text__4-requests__gpt-5.1-codex-max__"
                        "store-false__vercel-ai.jsonl")
    events.extend(orjson.loads(line) for line in jsonl.read_text().splitlines() if line.strip())
    return events


def recorded_text_response() -> dict[str, Any]:
    cassette = yaml.safe_load((FIXTURES / "nonstream__text__gpt-4o__pydantic-ai.yaml").read_text())
    return cassette["interactions"][0]["response"]["parsed_body"]
