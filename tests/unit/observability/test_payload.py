"""Reconify payload building, redaction and the JSON-lines records, from hand-made events."""

from __future__ import annotations

import copy

from app.observability.events import Interaction
from app.observability.jsonl import analytics_record, interaction_log_line, iso_utc
from app.observability.reconify import build_payload, interaction_type, sanitise_session
from app.observability.redact import REDACTED, redact_request, redact_response

REQUEST = {
    "contents": [{"role": "user", "parts": [{"text": "what is the weather in Paris?"}]}],
    "systemInstruction": {"parts": [{"text": "be brief"}]},
    "generationConfig": {"temperature": 0.3, "maxOutputTokens": 200},
    "tools": [{"functionDeclarations": [{"name": "weather", "parameters": {"type": "object"}}]}],
}
RESPONSE = {
    "candidates": [{
        "content": {"role": "model", "parts": [
            {"text": "Let me check.", "thoughtSignature": "c2ln"},
            {"functionCall": {"name": "weather", "args": {"city": "Paris"}, "id": "call_1"}}]},
        "finishReason": "STOP", "index": 0,
        "groundingMetadata": {"webSearchQueries": ["weather Paris"]},
    }],
    "usageMetadata": {"promptTokenCount": 12, "candidatesTokenCount": 7, "totalTokenCount": 19},
    "modelVersion": "gemini-2.5-flash",
}


def event(**over) -> Interaction:
    base = dict(surface="openai", model="gemini-2.5-flash", request=copy.deepcopy(REQUEST),
                response=copy.deepcopy(RESPONSE), started=1700000000.123, finished=1700000001.456, status=200)
    base.update(over)
    return Interaction(**base)


def test_generate_payload_fields() -> None:
    p = build_payload(event(), session_timeout=10, redact=False, app_key="app", api_key="api")
    assert p["reconify"] == {"format": "gemini", "type": "generate", "version": "2.3.0", "appKey": "app",
                             "apiKey": "api"}
    assert p["timestamps"] == {"request": 1700000000123, "response": 1700000001456}
    assert p["request"]["model"] == "gemini-2.5-flash"
    assert p["request"]["contents"] == REQUEST["contents"]
    assert p["request"]["generationConfig"] == REQUEST["generationConfig"]
    assert p["response"] == RESPONSE
    assert "user" not in p and "session" not in p and "sessionTimeout" not in p


def test_payload_does_not_touch_the_event() -> None:
    ev = event()
    build_payload(ev, session_timeout=10, redact=True, app_key="a", api_key="b")
    assert "model" not in ev.request
    assert ev.request == REQUEST and ev.response == RESPONSE


def test_model_prefix_is_stripped() -> None:
    p = build_payload(event(model="models/gemini-2.5-pro"), session_timeout=10, redact=False)
    assert p["request"]["model"] == "gemini-2.5-pro"


def test_chat_when_several_contents_or_a_session() -> None:
    multi = copy.deepcopy(REQUEST)
    multi["contents"] += [{"role": "model", "parts": [{"text": "hi"}]}, {"role": "user", "parts": [{"text": "x"}]}]
    assert interaction_type(event(request=multi)) == "chat"
    assert interaction_type(event()) == "generate"
    assert interaction_type(event(surface="session")) == "chat"
    assert interaction_type(event(request={})) == "generate"


def test_user_only_when_known() -> None:
    p = build_payload(event(user_id="alice-1"), session_timeout=10, redact=False)
    assert p["user"] == {"userId": "alice-1", "isAuthenticated": 1}
    assert "user" not in build_payload(event(user_id=""), session_timeout=10, redact=False)


def test_session_is_sanitised_and_carries_timeout() -> None:
    p = build_payload(event(session_id="3f2a-9c_b!x y"), session_timeout=25, redact=False)
    assert p["session"] == "3f2a9cbxy"
    assert p["sessionTimeout"] == 25
    assert sanitise_session("---") is None
    assert sanitise_session(None) is None
    assert "session" not in build_payload(event(session_id="!!"), session_timeout=10, redact=False)


def test_assembled_stream_response_passes_through() -> None:
    assembled = {"candidates": [{"content": {"role": "model", "parts": [{"text": "Hello world"}]},
                                 "finishReason": "STOP", "index": 0}],
                 "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2, "totalTokenCount": 5}}
    p = build_payload(event(response=assembled, stream=True), session_timeout=10, redact=False)
    assert p["response"] == assembled


def test_redaction_keeps_structure_and_usage() -> None:
    p = build_payload(event(), session_timeout=10, redact=True)
    req, resp = p["request"], p["response"]
    assert req["contents"][0]["role"] == "user"
    assert req["contents"][0]["parts"] == [{"text": REDACTED}]
    assert req["systemInstruction"]["parts"] == [{"text": REDACTED}]
    assert req["generationConfig"] == REQUEST["generationConfig"]
    assert req["tools"] == REQUEST["tools"]
    parts = resp["candidates"][0]["content"]["parts"]
    assert parts[0] == {"text": REDACTED, "thoughtSignature": "c2ln"}
    assert parts[1] == {"functionCall": {"name": "weather", "args": {}, "id": "call_1"}}
    assert resp["candidates"][0]["finishReason"] == "STOP"
    assert "groundingMetadata" not in resp["candidates"][0]
    assert resp["usageMetadata"] == RESPONSE["usageMetadata"]
    assert "Paris" not in str(p)


def test_redaction_of_other_parts_and_snake_case() -> None:
    req = {"contents": [{"role": "user", "parts": [
        {"inline_data": {"mime_type": "image/png", "data": "AAAA"}},
        {"fileData": {"mimeType": "application/pdf", "fileUri": "gs://secret/doc.pdf"}},
        {"functionResponse": {"name": "weather", "response": {"temp": 21}}},
        {"executableCode": {"language": "PYTHON", "code": "print(1)"}},
        {"codeExecutionResult": {"outcome": "OUTCOME_OK", "output": "1"}}]}],
        "system_instruction": {"parts": [{"text": "secret system"}]}}
    out = redact_request(req)
    parts = out["contents"][0]["parts"]
    assert parts[0] == {"inline_data": {"mime_type": "image/png", "data": REDACTED}}
    assert parts[1] == {"fileData": {"mimeType": "application/pdf", "fileUri": REDACTED}}
    assert parts[2] == {"functionResponse": {"name": "weather", "response": {}}}
    assert parts[3]["executableCode"] == {"language": "PYTHON", "code": REDACTED}
    assert parts[4]["codeExecutionResult"] == {"outcome": "OUTCOME_OK", "output": REDACTED}
    assert out["system_instruction"] == {"parts": [{"text": REDACTED}]}
    assert req["contents"][0]["parts"][0]["inline_data"]["data"] == "AAAA"  # input untouched
    assert redact_response({"promptFeedback": {"blockReason": "SAFETY"}}) == {
        "promptFeedback": {"blockReason": "SAFETY"}}


def test_interaction_log_line() -> None:
    ev = event(surface="session", user_id="bob", session_id="chat123", message="hi there",
               output_text="hello bob", status=200)
    line = interaction_log_line(ev, log_messages=True)
    assert line == {"timestamp": "2023-11-14T22:13:21.456Z", "user_id": "bob", "message": "hi there",
                    "output_length": 9, "chat_id": "chat123", "model": "gemini-2.5-flash",
                    "latency_ms": 1333.0, "status": 200, "surface": "session"}
    assert interaction_log_line(ev, log_messages=False)["message"] is None


def test_iso_utc() -> None:
    assert iso_utc(0) == "1970-01-01T00:00:00.000Z"


def test_analytics_record_is_the_payload_without_keys() -> None:
    ev = event(user_id="u1", key_id="AIza…x9Qc")
    rec = analytics_record(ev, session_timeout=10, redact=False)
    payload = build_payload(ev, session_timeout=10, redact=False, with_keys=False)
    assert "appKey" not in rec["reconify"] and "apiKey" not in rec["reconify"]
    assert {k: v for k, v in rec.items() if k != "gateway"} == payload
    assert rec["gateway"] == {"surface": "openai", "status": 200, "stream": False, "latency_ms": 1333.0,
                              "key_id": "AIza…x9Qc", "error": None}
