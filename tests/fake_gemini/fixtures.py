"""Reading the recorded Gemini fixtures under ``tests/fixtures/gemini/`` in whatever format they were stored.

The fake builds its answers and error bodies from these files rather than from memory, so a fixture added
later (with its SOURCES.md row) can be replayed through ``/_control/enqueue`` without code changes. Formats:

* ``*.json``: a plain body, or a js-genai replay recording (``interactions[].response.bodySegments``);
* ``*.yaml``: a VCR cassette (pydantic-ai ``parsed_body``/``body.string``, llm-gemini gzip ``!!binary``);
* ``*.sse``: a raw SSE body; ``*.jsonl``: one streamed response per line; ``*.txt``: a raw JSON-array stream.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from . import wire

FIXTURES_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "gemini"


@dataclass(frozen=True)
class Recorded:
    """One recorded answer: a status plus either a single body or the chunks of a stream.

    ``raw_events`` keeps the exact bytes of a raw ``.sse``/``.txt`` recording so a replay to a client that
    asked for the same framing is byte-for-byte what Google sent.
    """

    status: int
    body: Any = None
    chunks: list[Any] | None = None
    raw_events: list[bytes] | None = None
    raw_format: str | None = None  # "sse" or "json-array" when raw_events is set
    headers: dict[str, str] = field(default_factory=dict)


class FixtureError(ValueError):
    """A fixture path that is missing, escapes the fixture dir, or has a format the fake cannot read."""


def fixture_path(relative: str) -> Path:
    """Resolve a path relative to ``tests/fixtures/gemini`` and refuse anything outside it."""
    path = (FIXTURES_DIR / relative).resolve()
    if FIXTURES_DIR not in path.parents or not path.is_file():
        raise FixtureError(f"no fixture {relative!r} under {FIXTURES_DIR}")
    return path


def load_json(relative: str) -> Any:
    """A JSON fixture as parsed data."""
    return json.loads(fixture_path(relative).read_text(encoding="utf-8"))


@lru_cache(maxsize=128)
def load(relative: str, interaction: int = 0) -> Recorded:
    """Load a fixture as a :class:`Recorded` answer (``interaction`` picks one exchange of a cassette)."""
    path = fixture_path(relative)
    suffix = path.suffix
    if suffix == ".sse":
        raw = path.read_bytes()
        events = wire.split_sse_events(raw)
        return Recorded(200, chunks=wire.parse_sse_events(raw), raw_events=events, raw_format="sse")
    if suffix == ".jsonl":
        lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
        return Recorded(200, chunks=[json.loads(ln) for ln in lines])
    if suffix == ".txt":
        raw = path.read_bytes()
        return _json_array_recording(raw)
    if suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and "interactions" in data:
            return _replay_interaction(data["interactions"][interaction])
        if isinstance(data, list):
            return Recorded(200, chunks=data)
        status = int(data["error"]["code"]) if isinstance(data, dict) and "error" in data else 200
        return Recorded(status, body=data)
    if suffix in (".yaml", ".yml"):
        return _cassette_interaction(path, interaction)
    raise FixtureError(f"unsupported fixture format {suffix!r}")


def _json_array_recording(raw: bytes) -> Recorded:
    """A raw JSON-array stream: keep each element's exact bytes for replay."""
    elements = wire.split_json_array(raw)
    return Recorded(
        200,
        chunks=[json.loads(e) for e in elements],
        raw_events=elements,
        raw_format="json-array",
    )


def _replay_interaction(interaction: dict[str, Any]) -> Recorded:
    """js-genai replay format: ``bodySegments`` are the parsed stream chunks (or the single body)."""
    response = interaction["response"]
    status = int(response.get("statusCode", 200))
    segments = response.get("bodySegments") or []
    url = interaction.get("request", {}).get("url", "")
    if "streamGenerateContent" in url and status == 200:
        return Recorded(status, chunks=list(segments))
    return Recorded(status, body=segments[0] if segments else None)


def _cassette_interaction(path: Path, index: int) -> Recorded:
    """A VCR cassette exchange: pick the parsed body, the raw string, or the gunzipped binary."""
    import yaml  # local import: only cassette replays need PyYAML

    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    interaction = data["interactions"][index]
    response = interaction["response"]
    status = int(response.get("status", {}).get("code", 200))
    uri = str(interaction.get("request", {}).get("uri", ""))
    if "parsed_body" in response:
        return Recorded(status, body=response["parsed_body"])
    raw = response.get("body", {}).get("string", b"")
    if isinstance(raw, str):
        raw_bytes = raw.encode("utf-8")
    else:
        raw_bytes = bytes(raw)
        if raw_bytes[:2] == b"\x1f\x8b":
            raw_bytes = gzip.decompress(raw_bytes)
    if "alt=sse" in uri:
        return Recorded(
            status,
            chunks=wire.parse_sse_events(raw_bytes),
            raw_events=wire.split_sse_events(raw_bytes),
            raw_format="sse",
        )
    if "streamGenerateContent" in uri and raw_bytes.lstrip().startswith(b"["):
        return _json_array_recording(raw_bytes)
    return Recorded(status, body=json.loads(raw_bytes) if raw_bytes.strip() else None)
