"""Reading the recorded Anthropic traffic in tests/fixtures/anthropic (VCR YAML and raw SSE bodies)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "anthropic"


def interactions(name: str) -> list[dict[str, Any]]:
    return yaml.safe_load((FIXTURES / name).read_text())["interactions"]


def request_body(name: str, n: int = 0) -> dict[str, Any]:
    request = interactions(name)[n]["request"]
    return request["parsed_body"] if "parsed_body" in request else json.loads(request["body"])


def response_body(name: str, n: int = 0) -> dict[str, Any]:
    return interactions(name)[n]["response"]["parsed_body"]


def sse_events(raw: bytes | str) -> list[tuple[str, dict[str, Any]]]:
    """(event name, data) of an Anthropic SSE body; the event line is what the SDKs dispatch on."""
    text = raw.decode() if isinstance(raw, bytes) else raw
    out = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        lines = block.strip().splitlines()
        name = next((ln[6:].strip() for ln in lines if ln.startswith("event:")), None)
        data = "\n".join(ln[5:].lstrip() for ln in lines if ln.startswith("data:"))
        if name and data:
            out.append((name, json.loads(data)))
    return out


def recorded_events(name: str) -> list[tuple[str, dict[str, Any]]]:
    return sse_events((FIXTURES / name).read_bytes())


def shape(events: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """The grammar of a stream: event names with block and delta kinds, repeated deltas and pings collapsed."""
    out: list[str] = []
    for name, data in events:
        if name == "ping":
            continue
        if name == "content_block_start":
            label = f"start:{data['content_block']['type']}"
        elif name == "content_block_delta":
            label = f"delta:{data['delta']['type']}"
        else:
            label = name
        if not out or out[-1] != label:
            out.append(label)
    return out
