"""Issue 12, item 6: no spelling of ``key`` smuggles a caller's key upstream on the native surface.

The gateway forwards only the query parameters Gemini defines (``strip_key``); the fake's request log shows
what reached the upstream.
"""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest
import requests

from tests.support.gateway import TOKEN, GatewayHandle, start_gateway

POOL = ["ok-q1-41c2", "ok-q2-77d0"]
SMUGGLED = "AIzaSmuggledClientKey0123456789"
FORMS = ["%6Bey", "k%65y", "%6B%65%79", "%6b%65%79", "KEY", "Key", "key[]", "key%5B%5D", "key%00", "+key",
         "key+", "%20key", "access_token", "oauth_token", "$key", "key;", "alt=sse;key"]


@pytest.fixture(scope="module")
def gw(fake_server) -> Iterator[GatewayHandle]:
    with start_gateway(fake_server.base_url, api_keys=POOL) as handle:
        yield handle


@pytest.mark.parametrize("name", FORMS)
@pytest.mark.parametrize("path", ["models/gemini-2.5-flash:generateContent",
                                  "models/gemini-2.5-flash:streamGenerateContent"])
def test_encoded_key_never_reaches_upstream(gw, fake, name: str, path: str) -> None:
    resp = requests.post(f"{gw.url}/v1beta/{path}?{name}={SMUGGLED}&alt=sse",
                         json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
                         headers={"x-goog-api-key": TOKEN}, timeout=20)
    assert resp.status_code == 200
    sent = fake.requests()
    assert len(sent) == 1
    assert sent[0]["api_key"] in POOL
    assert sent[0]["query"] == {"alt": "sse"}
    assert SMUGGLED not in orjson.dumps(sent).decode()


def test_models_list_keeps_paging_parameters(gw, fake) -> None:
    resp = requests.get(f"{gw.url}/v1beta/models?pageSize=2&k%65y={SMUGGLED}&key={TOKEN}", timeout=20)
    assert resp.status_code == 200
    sent = fake.requests()[-1]
    assert sent["query"] == {"pageSize": "2"}
    assert SMUGGLED not in orjson.dumps(sent).decode() and TOKEN not in orjson.dumps(sent).decode()
