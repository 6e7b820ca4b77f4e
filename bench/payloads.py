"""The bytes every bench scenario sends and receives, built once from recorded Gemini bodies.

Real shapes matter: the gateway parses and translates the upstream's JSON, so a toy body would flatter it.
The bodies come from ``bench/fixtures/`` (see its SOURCES.md); the requests are the ones that recorded them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import orjson

FIXTURES = Path(__file__).resolve().parent / "fixtures"

#: Model used on every path; any name the gateway's model validation accepts would do.
MODEL = "gemini-2.5-flash"
#: The gateway's caller token (ALLOWED_TOKENS) for the bench run.
TOKEN = "bench-token"

#: The request recorded with generate-text.json (a system instruction and one user turn).
GEMINI_REQUEST = orjson.dumps({
    "contents": [{"parts": [{"text": "Hello!"}], "role": "user"}],
    "generationConfig": {"responseModalities": ["TEXT"]},
    "systemInstruction": {"parts": [{"text": "You are a chatbot."}], "role": "user"},
})

#: The same conversation as an OpenAI chat request; the gateway translates it into GEMINI_REQUEST's shape.
CHAT_REQUEST = orjson.dumps({
    "model": MODEL,
    "messages": [{"role": "system", "content": "You are a chatbot."}, {"role": "user", "content": "Hello!"}],
})
CHAT_STREAM_REQUEST = orjson.dumps({
    "model": MODEL, "stream": True,
    "messages": [{"role": "system", "content": "You are a chatbot."}, {"role": "user", "content": "Hello!"}],
})

#: The same conversation as an OpenAI Responses API request (instructions + one user input).
RESPONSES_REQUEST = orjson.dumps({"model": MODEL, "instructions": "You are a chatbot.", "input": "Hello!"})
RESPONSES_STREAM_REQUEST = orjson.dumps({"model": MODEL, "instructions": "You are a chatbot.", "input": "Hello!",
                                         "stream": True})

#: Paths on the three kinds of target (the relay and the direct call speak Gemini, the gateway both).
GENERATE_PATH = f"/v1beta/models/{MODEL}:generateContent"
STREAM_PATH = f"/v1beta/models/{MODEL}:streamGenerateContent?alt=sse"
CHAT_PATH = "/v1/chat/completions"
RESPONSES_PATH = "/v1/responses"


def generate_body() -> bytes:
    """A recorded non-stream generateContent answer (571 bytes, pretty-printed as Gemini sends it)."""
    return (FIXTURES / "generate-text.json").read_bytes()


def _recorded_events() -> list[bytes]:
    """The recorded stream's events, each with its own ``data: ...\\r\\n\\r\\n`` framing kept intact."""
    raw = (FIXTURES / "stream-text.sse").read_bytes()
    return [block + b"\r\n\r\n" for block in raw.split(b"\r\n\r\n") if block.strip()]


@dataclass(frozen=True, slots=True)
class StreamShape:
    """How many events a fake stream sends and how long it waits between two of them."""

    chunks: int = 8
    delay_ms: float = 20.0

    def events(self) -> list[bytes]:
        """``chunks`` recorded events: the first, the middle one repeated, and the last (``finishReason``).

        Gemini sends text in many small events; repeating the recorded middle event keeps every event a real
        one while letting the bench choose the stream's length.
        """
        first, middle, last = _recorded_events()
        count = max(2, self.chunks)
        return [first, *([middle] * (count - 2)), last]


def expected_text(kind: str) -> bytes:
    """A fragment every correct answer of ``kind`` contains: the smoke check before a target is measured."""
    return {
        "generate": b"How can I help you today?",
        "chat": b"chat.completion",
        "stream": b'"finishReason": "STOP"',
        "chat_stream": b"data: [DONE]",
        "responses": b'"object":"response"',
        "responses_stream": b"response.completed",
    }[kind]
