"""Durable operator state through real gateway processes sharing one store (issue 16).

SQLite (two processes over one DATA_DIR) and PostgreSQL (two processes over one database, tables under a
prefix unique to the test); token limits through the OpenAI SDK, shared across processes by Redis; usage
counts against what the fake upstream recorded; keys never readable in the store, logs or answers.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import asyncpg
import openai
import pytest
import requests
from cryptography.fernet import Fernet

from app.keys import key_id
from tests.support.gateway import ADMIN_TOKEN, TOKEN, GatewayHandle, start_gateway

PG_DSN = "postgresql://127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/0"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
MODEL = "gemini-2.5-flash"
WAIT = 15.0  # bound on every "eventually" below (the poll interval in these tests is 0.2 s)


def admin(gw: GatewayHandle, method: str, path: str, **kw) -> requests.Response:
    return requests.request(method, gw.url + "/admin/api" + path, headers=ADMIN, timeout=10, **kw)


def chat(gw: GatewayHandle, token: str = TOKEN, model: str = MODEL, content: str = "hi") -> requests.Response:
    return requests.post(gw.v1 + "/chat/completions", headers={"Authorization": f"Bearer {token}"}, timeout=30,
                         json={"model": model, "messages": [{"role": "user", "content": content}]})


def eventually(check, what: str) -> None:
    end = time.monotonic() + WAIT
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"not within {WAIT} s: {what}")


def pool_state(gw: GatewayHandle, kid: str) -> str | None:
    for row in admin(gw, "GET", "/keys").json()["keys"]:
        if row["id"] == kid:
            return row["state"]
    return None


def generate_calls(fake, key: str) -> int:
    return sum(1 for r in fake.requests(key) if "generateContent" in r["path"] or "GenerateContent" in r["path"])


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


@contextmanager
def shared_store(kind: str, tmp_path: Path) -> Iterator[dict[str, object]]:
    """Settings that make gateways share one durable store; PostgreSQL tables are dropped afterwards."""
    if kind == "sqlite":
        yield {"data_dir": str(tmp_path / "data")}
        return
    prefix = f"e{uuid.uuid4().hex[:10]}_"
    try:
        yield {"database_url": PG_DSN, "database_table_prefix": prefix, "data_dir": ""}
    finally:
        async def drop() -> None:
            conn = await asyncpg.connect(PG_DSN)
            try:
                for table in ("meta", "keys", "tokens", "usage", "errors"):
                    await conn.execute(f"DROP TABLE IF EXISTS {prefix}{table}")
            finally:
                await conn.close()
        asyncio.run(drop())


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_added_key_reaches_the_other_process_and_survives_restart(fake, tmp_path: Path, kind: str) -> None:
    seed, added = unique("ok-seed"), unique("ok-added")
    seed_id, added_id = key_id(seed), key_id(added)
    enc = Fernet.generate_key().decode()
    with shared_store(kind, tmp_path) as store, ExitStack() as stack:
        common = dict(api_keys=[seed], encryption_key=enc, state_poll_interval=0.2, max_wait=0, **store)
        a = stack.enter_context(start_gateway(fake.base_url, **common))
        b = stack.enter_context(start_gateway(fake.base_url, **common))
        answer = admin(a, "POST", "/keys", json={"keys": f"{added}\n{added}, your-gemini-key-1"})
        assert answer.status_code == 201, answer.text
        assert answer.json()["added"] == [added_id] and answer.json()["refused"][0]["index"] == 2
        assert admin(a, "POST", f"/keys/{seed_id}/disable").status_code == 200
        # B learns both changes by polling the store: only the added key is left to serve.
        eventually(lambda: pool_state(b, added_id) == "active" and pool_state(b, seed_id) == "off",
                   "the second process uses the added key")
        fake.reset()
        assert chat(b).status_code == 200
        assert generate_calls(fake, added) == 1 and generate_calls(fake, seed) == 0

        b.stop()  # a restart of B: the key comes back from the store, not from settings
        b2 = stack.enter_context(start_gateway(fake.base_url, **common))
        fake.reset()
        assert chat(b2).status_code == 200
        assert generate_calls(fake, added) == 1

        assert admin(b2, "DELETE", f"/keys/{added_id}").status_code == 200
        assert admin(b2, "POST", f"/keys/{seed_id}/enable").status_code == 200
        eventually(lambda: pool_state(a, added_id) is None and pool_state(a, seed_id) == "active",
                   "the first process dropped the removed key")
        fake.reset()
        for gw in (a, b2, a, b2):
            assert chat(gw).status_code == 200
        assert generate_calls(fake, added) == 0 and generate_calls(fake, seed) == 4

        # Never readable: not in the store's files, not in any log, not in any admin answer.
        answers = admin(a, "GET", "/keys").text + admin(a, "GET", "/settings").text + admin(a, "GET", "/errors").text
        logs = a.logs() + b2.logs() + b.logs()
        for secret in (seed, added):
            assert secret not in answers and secret not in logs
        if kind == "sqlite":
            raw = b"".join(p.read_bytes() for p in (tmp_path / "data").iterdir() if p.is_file())
            assert seed.encode() not in raw and added.encode() not in raw
        else:
            dump = asyncio.run(_pg_dump(str(store["database_table_prefix"])))
            assert seed not in dump and added not in dump and seed_id in dump


async def _pg_dump(prefix: str) -> str:
    conn = await asyncpg.connect(PG_DSN)
    try:
        rows = await conn.fetch(f"SELECT * FROM {prefix}keys")
        return repr([dict(r) for r in rows])
    finally:
        await conn.close()


def _token(gw: GatewayHandle, **spec) -> str:
    answer = admin(gw, "POST", "/tokens", json={"name": "t", **spec})
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["secret"].startswith("sk-gw-") and body["secret"] not in admin(gw, "GET", "/tokens").text
    return body["secret"]


def test_token_limits_allowlist_and_expiry_in_openai_shape(fake, tmp_path: Path) -> None:
    key = unique("ok-limits")
    with start_gateway(fake.base_url, api_keys=[key], data_dir=str(tmp_path / "d")) as gw:
        secret = _token(gw, limits={"rpm": 2})
        client = openai.OpenAI(base_url=gw.v1, api_key=secret, max_retries=0)
        for _ in range(2):
            client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}])
        with pytest.raises(openai.RateLimitError) as refused:
            client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}])
        assert int(refused.value.response.headers["retry-after"]) >= 1
        assert refused.value.body["code"] == "token_rpm_limit"

        fake.reset()
        scoped = _token(gw, models=["gemini-2.5-*"])
        answer = chat(gw, scoped, model="gemini-3-pro-preview")
        assert answer.status_code == 403 and answer.json()["error"]["param"] == "model"
        assert fake.requests() == []  # refused before any upstream call
        assert chat(gw, scoped).status_code == 200

        expired = _token(gw, expires_at=time.time() - 60)
        answer = chat(gw, expired)
        assert answer.status_code == 401 and "expired" in answer.json()["error"]["message"]
        tid = admin(gw, "GET", "/tokens").json()["tokens"][-1]["id"]
        assert admin(gw, "POST", f"/tokens/{tid}/disable").status_code == 200
        assert chat(gw, expired).json()["error"]["message"] == "this token is disabled"
        # A client token never opens the console.
        assert requests.get(gw.url + "/admin/api/keys", headers={"Authorization": f"Bearer {scoped}"},
                            timeout=5).status_code == 401


def _known(gw, secret: str) -> bool:
    """Whether ``gw`` knows the token, asked where no limit counts (the model list is not metered)."""
    return requests.get(gw.v1 + "/models", headers={"Authorization": f"Bearer {secret}"}, timeout=5).status_code != 401


def _early_in_a_minute() -> None:
    """Sleep past the next minute boundary when it is less than 15 s away."""
    left = 60 - time.time() % 60
    if left < 15:
        time.sleep(left + 0.2)


def test_rpm_holds_across_two_processes_sharing_redis(fake, tmp_path: Path) -> None:
    key = unique("ok-redis")
    common = dict(api_keys=[key], data_dir=str(tmp_path / "d"), redis_url=REDIS_URL, state_poll_interval=0.2)
    with start_gateway(fake.base_url, **common) as a, start_gateway(fake.base_url, **common) as b:
        secret = _token(a, limits={"rpm": 2})
        eventually(lambda: _known(b, secret), "the second process knows the new token")
        _early_in_a_minute()  # rpm counts per calendar minute: the three requests below must share one
        assert chat(b, secret).status_code == 200
        # B has spent one request of the minute; one more anywhere is allowed, then both refuse.
        assert chat(a, secret).status_code == 200
        for gw in (a, b):
            refused = chat(gw, secret)
            assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1


def test_usage_counts_equal_what_the_upstream_saw(fake, tmp_path: Path) -> None:
    ok, invalid, limited = unique("ok-usage"), unique("invalid-usage"), unique("rpm-usage")
    with start_gateway(fake.base_url, api_keys=[ok, invalid, limited], data_dir=str(tmp_path / "d"),
                       max_wait=0) as gw:
        fake.reset()
        secret = _token(gw)
        client = openai.OpenAI(base_url=gw.v1, api_key=secret, max_retries=0)
        for i in range(6):
            client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": f"q{i}"}])
        for i in range(2):
            list(client.chat.completions.create(model=MODEL, stream=True, stream_options={"include_usage": True},
                                                messages=[{"role": "user", "content": f"s{i}"}]))
        rows = {r["key"]: r for r in admin(gw, "GET", "/usage", params={"model": MODEL}).json()["usage"]}
        seen = {k: generate_calls(fake, k) for k in (ok, invalid, limited)}
        assert seen[invalid] >= 1 and seen[limited] >= 1 and seen[ok] == 8
        for k, n in seen.items():
            assert rows[key_id(k)]["requests"] == n
        assert rows[key_id(ok)]["successes"] == 8 and rows[key_id(ok)]["input_tokens"] > 0
        assert rows[key_id(invalid)]["key_invalid"] == seen[invalid]
        assert rows[key_id(limited)]["rate_limited"] == seen[limited]

        tid = next(t["id"] for t in admin(gw, "GET", "/tokens").json()["tokens"] if t["name"] == "t")
        per_token = admin(gw, "GET", f"/tokens/{tid}/usage").json()["usage"]
        assert [(r["requests"], r["successes"]) for r in per_token] == [(8, 8)]
        assert per_token[0]["output_tokens"] > 0

        errors = admin(gw, "GET", "/errors", params={"limit": 1}).json()
        assert len(errors["errors"]) == 1 and errors["next_before"] is not None
        classes = {e["class"] for e in admin(gw, "GET", "/errors").json()["errors"]}
        assert classes == {"key_invalid", "rate_limited"}
        day = admin(gw, "GET", "/usage", params={"period": "day", "key": key_id(ok)}).json()["usage"]
        assert day[0]["requests"] == 8
        text = admin(gw, "GET", "/errors").text + gw.logs()
        assert ok not in text and invalid not in text and limited not in text
        durable = gw.health()["durable"]
        assert durable["backend"] == "sqlite" and durable["flushes"] >= 1 and durable["flush_errors"] == 0


def test_refuses_to_start_with_encrypted_keys_and_no_encryption_key(fake, tmp_path: Path) -> None:
    data = str(tmp_path / "d")
    with start_gateway(fake.base_url, api_keys=[unique("ok-enc")], data_dir=data,
                       encryption_key=Fernet.generate_key().decode()):
        pass
    with start_gateway(fake.base_url, api_keys=[], data_dir=data, wait=False) as gw:
        assert gw.process.wait(20) != 0
        assert "encrypted API keys but ENCRYPTION_KEY is not set" in gw.logs()


def test_token_limits_in_the_native_shape(fake, tmp_path: Path) -> None:
    key = unique("ok-native")
    with start_gateway(fake.base_url, api_keys=[key], data_dir=str(tmp_path / "d")) as gw:
        def generate(token: str, model: str = MODEL) -> requests.Response:
            return requests.post(f"{gw.url}/v1beta/models/{model}:generateContent", timeout=30,
                                 headers={"x-goog-api-key": token},
                                 json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]})

        limited = _token(gw, limits={"rpm": 2}, models=["gemini-2.5-*"])
        assert [generate(limited).status_code for _ in range(2)] == [200, 200]
        third = generate(limited)
        assert third.status_code == 429 and int(third.headers["retry-after"]) >= 1
        assert third.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
        fake.reset()
        outside = generate(limited, "gemini-3-pro-preview")
        assert outside.status_code == 403 and outside.json()["error"]["status"] == "PERMISSION_DENIED"
        assert fake.requests() == []
        expired = generate(_token(gw, expires_at="2020-01-01T00:00:00Z"))
        assert expired.status_code == 401 and expired.json()["error"]["status"] == "UNAUTHENTICATED"
