"""The one scrubber (app/gemini/scrub.py): pool keys of any format, key shapes, key= values, projects."""

from __future__ import annotations

import orjson

from app.gemini.scrub import scrub, scrub_bytes
from app.keys import key_id
from app.keys import scrub as keys_scrub
from app.protocols.openai_chat.errors import scrub as openai_scrub

AQ_KEY = "AQ." + "Ab8RN6K" + "zq3VwTgPp0xYh_5mL2cNd"
AIZA_KEY = "AIza" + "SyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY"
ODD_KEY = "pool-secret-" + "q1w2e3r4t5y6u7"


def test_old_names_are_the_one_scrubber() -> None:
    assert keys_scrub is scrub and openai_scrub is scrub


def test_pool_keys_of_any_format_and_known_shapes() -> None:
    text = f"key {ODD_KEY} and {AQ_KEY} and {AIZA_KEY}"
    cleaned = scrub(text, [ODD_KEY])
    assert cleaned == f"key {key_id(ODD_KEY)} and {key_id(AQ_KEY)} and {key_id(AIZA_KEY)}"


def test_urls_consumers_and_projects() -> None:
    text = ("Consumer 'api_key:whatever-123' in project 123456789012; see https://x.test/a?key=s3cr3t&b=1 "
            "or projects/987654321098")
    cleaned = scrub(text)
    for secret in ("whatever-123", "123456789012", "s3cr3t", "987654321098"):
        assert secret not in cleaned
    assert "key=[redacted]&b=1" in cleaned


def test_text_without_secrets_is_returned_as_is() -> None:
    text = "The model is overloaded. Please try again later."
    assert scrub(text, [ODD_KEY]) is text
    data = b'{"error": {"message": "overloaded"}}'
    assert scrub_bytes(data, [ODD_KEY]) is data


def test_scrubbed_json_stays_json() -> None:
    message = f'call "https://x.test/m?key={ODD_KEY}" failed for {ODD_KEY}\\ and api_key:{AQ_KEY}'
    data = orjson.dumps({"error": {"code": 400, "message": message}})
    cleaned = scrub_bytes(data, [ODD_KEY])
    parsed = orjson.loads(cleaned)  # still valid JSON: nothing cut an escape in half
    assert ODD_KEY not in cleaned.decode() and AQ_KEY not in cleaned.decode()
    assert parsed["error"]["code"] == 400


def test_bytes_that_are_not_utf8_survive() -> None:
    data = b"\xff\xfe broken " + ODD_KEY.encode() + b" \x80"
    cleaned = scrub_bytes(data, [ODD_KEY])
    assert cleaned.startswith(b"\xff\xfe broken ") and cleaned.endswith(b" \x80")
    assert ODD_KEY.encode() not in cleaned
