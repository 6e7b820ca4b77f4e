"""Issue 12, item 8 (defence in depth): a key the transport refuses to send (a control character slipped past
the checks) is a classified failure of that key, retried on another key, never an unhandled 500."""

from __future__ import annotations

from app.keys import KeyManager, MemoryPoolStore, key_id
from app.upstream import GeminiClient
from tests.support.listener import recording_listener


async def test_unsendable_key_is_classified_and_the_request_moves_on() -> None:
    bad, good = "bad\nkey", "good-key"
    keys = KeyManager([bad, good], MemoryPoolStore(), max_failures=3)
    with recording_listener() as upstream:
        client = GeminiClient(base_url=upstream.url + "/v1beta", keys=keys, max_retries=4, time_out=20,
                              connect_timeout=5, read_timeout=5, max_wait=0, connections=4)
        await client.start()
        try:
            for _ in range(4):
                result = await client.call("GET", "models", model="models")
                assert result.status == 200 and result.key_id == key_id(good)
        finally:
            await client.close()
    assert len(upstream.hits) == 4   # the bad key's attempts never reached the wire
    states = {k["id"]: k for k in await keys.snapshot()}
    assert states[key_id(bad)]["state"] == "disabled"   # MAX_FAILURES classified failures bench it
