"""Two gateway processes sharing one Redis: what one replica learns about a key, the other honours; token
limits and the per-user session rate limit hold across both; a session goes on on either; affinity and
owner bindings made on one are honoured by the other.

Keys are named per test run (a uuid), so state left in Redis by an earlier run cannot make a test pass. Replica B
has already served (its view loaded and subscribed) when A meets the bad key, so only A's write-through and
its published change can keep B's round-robin off that key.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import redis
import requests

from app.keys.affinity import affinity_hint
from tests.fake_gemini.process import FakeHandle
from tests.support.gateway import ADMIN_TOKEN, TOKEN, GatewayHandle, start_gateway

REDIS_URL = "redis://127.0.0.1:6379/0"
MODEL = "gemini-2.5-flash"
STALENESS_BOUND = 1.5


def chat(gw: GatewayHandle, text: str) -> requests.Response:
    return requests.post(gw.v1 + "/chat/completions", headers=gw.headers(), timeout=30,
                         json={"model": MODEL, "messages": [{"role": "user", "content": text}]})


def used(fake: FakeHandle, key: str) -> int:
    return sum(1 for r in fake.requests(key) if r["path"].endswith(":generateContent"))


def _propagates(fake: FakeHandle, behaviour: str) -> None:
    tag = uuid.uuid4().hex[:12]
    bad_key = f"{behaviour}-{tag}"
    settings = {"api_keys": [f"ok-a-{tag}", f"ok-b-{tag}", bad_key], "redis_url": REDIS_URL}
    with start_gateway(fake.base_url, **settings) as a, start_gateway(fake.base_url, **settings) as b:
        fake.script(bad_key, "ok")  # B warms up on a healthy pool: its view is loaded and subscribed
        for i in range(3):
            assert chat(b, f"b{i}").status_code == 200
        fake.script(bad_key, behaviour)
        before = used(fake, bad_key)
        for i in range(3):  # within three picks A meets the key: benched, the request retried elsewhere
            resp = chat(a, f"a{i}")
            assert resp.status_code == 200, resp.text
        assert used(fake, bad_key) == before + 1
        # The stated staleness bound (RedisPoolStore.sync_interval + a round trip): pub/sub normally brings
        # the change at once, but a message lost while the machine is loaded is caught by the version poll.
        time.sleep(STALENESS_BOUND)
        # B under concurrent load: every request served, none by the key A benched (unbenched, round-robin
        # would give it a third of them).
        with ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(lambda i: chat(b, f"load{i}").status_code, range(40)))
        assert codes == [200] * 40
        assert used(fake, bad_key) == before + 1


def test_an_invalid_key_found_by_one_replica_is_never_used_by_the_other(fake: FakeHandle) -> None:
    _propagates(fake, "invalid")


def test_a_cooldown_seen_by_one_replica_is_honoured_by_the_other(fake: FakeHandle) -> None:
    _propagates(fake, "rpd")


# -- everything else on the hot path: token limits, the session rate limit, sessions, bindings ----------------

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@contextmanager
def two_replicas(fake: FakeHandle, keys: list[str], **settings: object) -> Iterator[tuple[GatewayHandle,
                                                                                          GatewayHandle]]:
    """Two gateways on one Redis and one durable store (so a token made on one exists on both)."""
    shared = tempfile.mkdtemp(prefix="gw-replicas-")
    try:
        common = {"api_keys": keys, "redis_url": REDIS_URL, "data_dir": shared, "state_poll_interval": 0.2,
                  **settings}
        with start_gateway(fake.base_url, **common) as a, start_gateway(fake.base_url, **common) as b:
            yield a, b
    finally:
        shutil.rmtree(shared, ignore_errors=True)


def _until(check: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    """Wait (bounded) for a state another process changes."""
    end = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.05)


def _limited_token(a: GatewayHandle, b: GatewayHandle, **limits: int) -> str:
    resp = requests.post(a.url + "/admin/api/tokens", json={"name": "shared", "limits": limits}, headers=ADMIN,
                         timeout=10)
    assert resp.status_code == 201, resp.text
    secret = resp.json()["secret"]
    for gw in (a, b):  # B learns the token from the durable store's version poll
        _until(lambda gw=gw: requests.get(gw.v1 + "/models", headers={"Authorization": f"Bearer {secret}"},
                                          timeout=5).status_code == 200, "the token on both replicas")
    return str(secret)


def test_a_token_limit_holds_across_replicas_under_concurrent_load(fake: FakeHandle) -> None:
    tag = uuid.uuid4().hex[:10]
    with two_replicas(fake, [f"ok-a-{tag}", f"ok-b-{tag}"]) as (a, b):
        secret = _limited_token(a, b, rpd=20)  # (listing models is not a counted call)

        def call(i: int) -> requests.Response:
            gw = (a, b)[i % 2]
            return requests.post(gw.v1 + "/chat/completions", headers={"Authorization": f"Bearer {secret}"},
                                 json={"model": MODEL, "messages": [{"role": "user", "content": f"q{i}"}]},
                                 timeout=30)

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(call, range(40)))
    ok = [r for r in answers if r.status_code == 200]
    refused = [r for r in answers if r.status_code == 429]
    assert len(ok) == 20 and len(refused) == 20, sorted(r.status_code for r in answers)
    assert all(r.json()["error"]["code"] == "token_rpd_limit" for r in refused)
    assert {i % 2 for i, r in enumerate(answers) if r.status_code == 200} == {0, 1}  # both replicas served


def _send(gw: GatewayHandle, chat_id: str, message: str) -> requests.Response:
    return requests.post(gw.url + "/send_message", json={"chat_id": chat_id, "message": message}, timeout=30)


def _start(gw: GatewayHandle, user: str) -> str:
    resp = requests.post(gw.url + "/start_chat", json={"user_id": user}, timeout=10)
    assert resp.status_code == 200, resp.text
    return str(resp.json()["chat_id"])


def test_the_per_user_session_rate_limit_holds_across_replicas(fake: FakeHandle) -> None:
    user = f"alice-{uuid.uuid4().hex[:8]}"
    # One call per 20 s: every call below falls in one window, however slowly the machine runs.
    with two_replicas(fake, [f"ok-{uuid.uuid4().hex[:8]}"], valid_users=[user], user_rate_limit=0.05) as (a, b):
        chats = [_start((a, b)[i % 2], user) for i in range(6)]  # six chats: no turn waits on another's lease
        with ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(lambda i: _send((a, b)[i % 2], chats[i], f"m{i}"), range(6)))
    codes = sorted(r.status_code for r in answers)
    assert codes == [200, 429, 429, 429, 429, 429], codes
    assert all(int(r.headers["retry-after"]) >= 1 for r in answers if r.status_code == 429)


def test_sessions_continue_on_the_other_replica_under_concurrent_load(fake: FakeHandle) -> None:
    tag = uuid.uuid4().hex[:8]
    users = [f"u{i}-{tag}" for i in range(4)]
    with two_replicas(fake, [f"ok-a-{tag}", f"ok-b-{tag}"], valid_users=users, user_rate_limit=1000) as (a, b):
        chats = [_start(a, user) for user in users]

        def converse(c: int) -> list[int]:
            # Turns alternate replicas: each must see the history the other saved.
            return [_send((b, a)[t % 2], chats[c], f"c{c}-{tag}-t{t}").status_code for t in range(4)]

        with ThreadPoolExecutor(4) as pool:
            codes = list(pool.map(converse, range(4)))
    assert codes == [[200] * 4] * 4
    bodies = {str(r["body"]): r["body"] for r in fake.requests() if r["path"].endswith(":generateContent")}
    for c in range(4):
        last = [body for text, body in bodies.items() if f"c{c}-{tag}-t3" in text]
        assert len(last) == 1
        said = [turn["parts"][0]["text"] for turn in last[0]["contents"]]
        assert said == [f"c{c}-{tag}-t0", f"echo: c{c}-{tag}-t0", f"c{c}-{tag}-t1", f"echo: c{c}-{tag}-t1",
                        f"c{c}-{tag}-t2", f"echo: c{c}-{tag}-t2", f"c{c}-{tag}-t3"]


def _served_by(fake: FakeHandle, text: str) -> list[str]:
    """The keys that answered generateContent calls whose body carries ``text``."""
    return [r["api_key"] for r in fake.requests() if r["path"].endswith(":generateContent") and text in
            str(r["body"])]


def test_affinity_and_owner_bindings_made_on_one_replica_hold_on_the_other(fake: FakeHandle) -> None:
    tag = uuid.uuid4().hex[:8]
    keys = [f"ok-{c}-{tag}" for c in "abc"]
    header = {"X-Session-Id": f"conv-{tag}"}
    hint = affinity_hint({"x-session-id": f"conv-{tag}"})
    assert hint is not None
    native = f"/v1beta/models/{MODEL}:generateContent"
    with two_replicas(fake, keys) as (a, b):
        first = requests.post(a.url + native, headers={"x-goog-api-key": TOKEN, **header}, timeout=10,
                              json={"contents": [{"role": "user", "parts": [{"text": f"a0-{tag}"}]}]})
        assert first.status_code == 200, first.text
        cache = requests.post(a.url + "/v1beta/cachedContents", headers={"x-goog-api-key": TOKEN}, timeout=10,
                              json={"model": f"models/{MODEL}", "ttl": "300s",
                                    "contents": [{"role": "user", "parts": [{"text": "shared context"}]}]})
        assert cache.status_code == 200, cache.text
        bound = _served_by(fake, f"a0-{tag}")
        owner = [r["api_key"] for r in fake.requests() if r["path"].endswith("/cachedContents")]
        assert len(bound) == 1 and len(owner) == 1
        # A writes the binding behind its answer (one background round trip): wait for it to be in Redis.
        with redis.Redis.from_url(REDIS_URL) as raw:
            _until(lambda: raw.exists(f"gg:aff:{hint}") == 1, "the binding in Redis", timeout=5)

        def on_b(i: int) -> int:
            if i % 2:
                body = {"contents": [{"role": "user", "parts": [{"text": f"b{i}-{tag}"}]}]}
                return requests.post(b.url + native, headers={"x-goog-api-key": TOKEN, **header}, json=body,
                                     timeout=10).status_code
            body = {"contents": [{"role": "user", "parts": [{"text": f"b{i}-{tag}"}]}],
                    "cachedContent": cache.json()["name"]}
            return requests.post(b.url + native, headers={"x-goog-api-key": TOKEN}, json=body,
                                 timeout=10).status_code

        with ThreadPoolExecutor(4) as pool:
            assert list(pool.map(on_b, range(12))) == [200] * 12
    for i in range(12):
        assert _served_by(fake, f"b{i}-{tag}") == (bound if i % 2 else owner), i
