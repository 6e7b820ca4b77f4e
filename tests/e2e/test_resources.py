"""Keys that own things (issue 15): files, caches and batches through the real gateway with google-genai, the
OpenAI SDK and plain HTTP, over a fake whose three keys sit in three Google Cloud projects (the fake answers
Google's 403 when a key names another project's resource, so a wrong routing fails the test)."""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable
from typing import Any

import anthropic
import openai
import orjson
import pytest
import requests
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from tests.fake_gemini.process import FakeHandle
from tests.support.gateway import TOKEN, GatewayHandle, start_gateway

POOL = ["ok-proj-a-41c2", "ok-proj-b-7d90", "ok-proj-c-0be5"]
OTHER = "sk-other-tenant"
ADMIN = "admin-secret-token"
MODEL = "gemini-2.5-flash"
MB = 1024 * 1024
_CLIENTS: list[Any] = []


@pytest.fixture(scope="module")
def gw(fake_server: FakeHandle, tmp_path_factory: pytest.TempPathFactory) -> Any:
    users = tmp_path_factory.mktemp("resources") / "users.txt"
    users.write_text("affinity-user\n")
    with start_gateway(fake_server.base_url, api_keys=POOL, allowed_tokens=[TOKEN, OTHER], auth_token=ADMIN,
                       valid_users_file=str(users), user_rate_limit=1000) as handle:
        yield handle


def sdk(gw: GatewayHandle, token: str = TOKEN, prefix: str = "", **headers: str) -> genai.Client:
    client = genai.Client(api_key=token, http_options=types.HttpOptions(
        base_url=gw.url + prefix, api_version="v1beta", timeout=20_000, headers=headers or None))
    _CLIENTS.append(client)
    return client


def upload(client: genai.Client, size: int = 64 * 1024, mime: str = "application/pdf") -> types.File:
    return client.files.upload(file=io.BytesIO(b"%PDF" + b"x" * (size - 4)),
                               config=types.UploadFileConfig(mime_type=mime, display_name=f"doc-{size}"))


def calls(fake: FakeHandle, suffix: str) -> list[dict[str, Any]]:
    return [r for r in fake.requests() if r["path"].endswith(suffix)]


def owner_of(fake: FakeHandle) -> str:
    """The key whose project took the last upload start."""
    starts = [r for r in calls(fake, "/upload/v1beta/files") if "upload_id" not in r["query"]]
    return starts[-1]["api_key"]


# -- files ----------------------------------------------------------------------------------------------------

def test_upload_url_points_at_the_gateway_never_at_google(gw: GatewayHandle, fake: FakeHandle) -> None:
    for prefix in ("", "/gemini", "/hf"):
        resp = requests.post(f"{gw.url}{prefix}/upload/v1beta/files", timeout=10, json={"file": {
            "mimeType": "text/plain"}}, headers={"x-goog-api-key": TOKEN, "X-Goog-Upload-Protocol": "resumable",
                                                 "X-Goog-Upload-Command": "start"})
        assert resp.status_code == 200, resp.text
        url = resp.headers["x-goog-upload-url"]
        assert url.startswith(f"{gw.url}{prefix}/upload/v1beta/files?upload_id=")
        assert resp.headers["x-goog-upload-status"] == "active"
        assert not any(key in url for key in POOL) and "key=" not in url
        final = requests.post(url, data=b"hello", timeout=10, headers={
            "X-Goog-Upload-Command": "upload, finalize", "X-Goog-Upload-Offset": "0"})
        assert final.status_code == 200 and final.headers["x-goog-upload-status"] == "final"
        assert final.json()["file"]["sizeBytes"] == "5"


def test_files_upload_get_list_generate_delete(gw: GatewayHandle, fake: FakeHandle) -> None:
    client = sdk(gw)
    file = upload(client, 3 * MB)
    assert file.size_bytes == 3 * MB and file.state == types.FileState.ACTIVE
    owner = owner_of(fake)
    chunks = [r for r in calls(fake, "/upload/v1beta/files") if "upload_id" in r["query"]]
    assert chunks and {r["api_key"] for r in chunks} == {owner}
    assert client.files.get(name=file.name).name == file.name
    assert file.name in [f.name for f in client.files.list()]
    for turn in range(6):  # whatever the rotation, every use goes to the owner's project
        reply = client.models.generate_content(model=MODEL, contents=[file, f"summarise {turn}"])
        assert reply.text.startswith(f"echo: [fileData:{file.uri}]")
    streamed = "".join(c.text or "" for c in client.models.generate_content_stream(
        model=MODEL, contents=[file, "stream it"]))
    assert file.uri in streamed
    assert {r["api_key"] for r in calls(fake, ":generateContent")} == {owner}
    assert {r["api_key"] for r in calls(fake, ":streamGenerateContent")} == {owner}
    client.files.delete(name=file.name)
    assert file.name not in [f.name for f in client.files.list()]
    with pytest.raises(genai_errors.ClientError) as gone:
        client.files.get(name=file.name)
    assert gone.value.code == 404


def test_two_files_of_one_conversation_work_together(gw: GatewayHandle, fake: FakeHandle) -> None:
    session = sdk(gw, **{"X-Session-Id": f"conv-{uuid.uuid4().hex}"})
    first, second = upload(session), upload(session, 32 * 1024)
    reply = session.models.generate_content(model=MODEL, contents=[first, second, "compare"])
    assert first.uri in reply.text and second.uri in reply.text
    # Without a conversation the uploads rotate over projects: using both is a 400 that names each.
    loose = sdk(gw)
    a = upload(loose)
    key_a = owner_of(fake)
    b = upload(loose)
    assert owner_of(fake) != key_a
    with pytest.raises(genai_errors.ClientError) as mixed:
        loose.models.generate_content(model=MODEL, contents=[a, b, "compare"])
    assert mixed.value.code == 400
    assert a.name in mixed.value.message and b.name in mixed.value.message


def test_another_token_cannot_see_or_use_the_file(gw: GatewayHandle, fake: FakeHandle) -> None:
    mine = upload(sdk(gw))
    other = sdk(gw, OTHER)
    with pytest.raises(genai_errors.ClientError) as hidden:
        other.files.get(name=mine.name)
    assert hidden.value.code == 404
    with pytest.raises(genai_errors.ClientError) as unusable:
        other.models.generate_content(model=MODEL, contents=[mine, "steal"])
    assert unusable.value.code == 404
    assert mine.name not in [f.name for f in other.files.list()]
    with pytest.raises(genai_errors.ClientError):
        other.files.delete(name=mine.name)
    assert mine.name in [f.name for f in sdk(gw, ADMIN).files.list()]
    assert calls(fake, ":generateContent") == []  # refused before any upstream call


def test_owner_out_of_quota_or_disabled_says_so(fake_server: FakeHandle, fake: FakeHandle) -> None:
    """The owner's trouble is reported as such (429 + Retry-After, 503), never tried on a key that would 403."""
    with start_gateway(fake_server.base_url, api_keys=POOL, max_wait=0) as own_gw:
        client = sdk(own_gw)
        cooled = upload(client)
        cooled_owner = owner_of(fake)
        dead = upload(client)
        dead_owner = owner_of(fake)
        assert dead_owner != cooled_owner
        fake.script(cooled_owner, "rpm", retry_delay="30s")
        fake.script(dead_owner, "invalid")
        url = f"{own_gw.url}/v1beta/models/{MODEL}:generateContent"

        def use(file: types.File) -> requests.Response:
            body = {"contents": [{"role": "user", "parts": [
                {"fileData": {"fileUri": file.uri, "mimeType": "application/pdf"}}, {"text": "hi"}]}]}
            return requests.post(url, json=body, headers={"x-goog-api-key": TOKEN}, timeout=10)

        cooling = use(cooled)
        assert cooling.status_code == 429 and cooling.headers["retry-after"] == "30"
        assert "owns this resource" in cooling.json()["error"]["message"]
        disabled = use(dead)
        assert disabled.status_code == 503
        assert "owns this resource is disabled" in disabled.json()["error"]["message"]
        used = [r["api_key"] for r in calls(fake, ":generateContent")]
        assert sorted(used) == sorted([cooled_owner, dead_owner])  # one try each, never another project


# -- caches and batches ---------------------------------------------------------------------------------------

def test_cache_create_use_update_delete(gw: GatewayHandle, fake: FakeHandle) -> None:
    client = sdk(gw)
    doc = upload(client)
    cache = client.caches.create(model=MODEL, config=types.CreateCachedContentConfig(
        contents=[doc, "a long shared context"], ttl="300s"))
    assert cache.name.startswith("cachedContents/")
    for turn in range(5):
        text = client.models.generate_content(model=MODEL, contents=f"question {turn}",
                                              config=types.GenerateContentConfig(cached_content=cache.name)).text
        assert text == f"echo: question {turn}"
    owners = {r["api_key"] for r in calls(fake, ":generateContent")}
    assert owners == {r["api_key"] for r in calls(fake, "/v1beta/cachedContents") if r["method"] == "POST"}
    updated = client.caches.update(name=cache.name, config=types.UpdateCachedContentConfig(ttl="900s"))
    assert updated.expire_time > cache.expire_time
    assert client.caches.get(name=cache.name).name == cache.name
    assert cache.name in [c.name for c in client.caches.list()]
    client.caches.delete(name=cache.name)
    assert cache.name not in [c.name for c in client.caches.list()]


def test_batch_created_and_polled(gw: GatewayHandle, fake: FakeHandle) -> None:
    client = sdk(gw)
    job = client.batches.create(model=MODEL, src=[
        {"contents": [{"role": "user", "parts": [{"text": "one"}]}]},
        {"contents": [{"role": "user", "parts": [{"text": "two"}]}]}])
    assert job.name.startswith("batches/")
    state = job.state
    for _ in range(10):
        if state == types.JobState.JOB_STATE_SUCCEEDED:
            break
        state = client.batches.get(name=job.name).state
    assert state == types.JobState.JOB_STATE_SUCCEEDED
    assert job.name in [j.name for j in client.batches.list()]
    polls = {r["api_key"] for r in fake.requests() if r["path"] == f"/v1beta/{job.name}"}
    created = {r["api_key"] for r in calls(fake, ":batchGenerateContent")}
    assert polls == created and len(created) == 1
    client.batches.delete(name=job.name)


def test_interactions_chain_on_one_key_streamed_or_not(gw: GatewayHandle, fake: FakeHandle) -> None:
    url = f"{gw.url}/gemini/v1beta/interactions"
    auth = {"x-goog-api-key": TOKEN, "Api-Revision": "2026-05-20"}
    first = requests.post(url, json={"model": MODEL, "input": "hello"}, headers=auth, timeout=10)
    assert first.status_code == 200, first.text
    previous = first.json()["id"]
    for turn in range(4):
        stream = turn % 2 == 1
        resp = requests.post(url, headers=auth, timeout=10, json={
            "model": MODEL, "input": f"turn {turn}", "previous_interaction_id": previous, "stream": stream})
        assert resp.status_code == 200, resp.text
        if stream:
            assert resp.headers["content-type"].startswith("text/event-stream")
            events = [orjson.loads(line[6:]) for line in resp.text.splitlines() if line.startswith("data: ")]
            assert [e["event_type"] for e in events][-1] == "interaction.completed"
            previous = events[0]["interaction"]["id"]
        else:
            previous = resp.json()["id"]
    created = [r for r in calls(fake, "/v1beta/interactions")]
    assert len(created) == 5 and len({r["api_key"] for r in created}) == 1
    assert created[0]["headers"].get("content-type") == "application/json"
    one = f"{url}/{previous}"
    assert requests.get(one, headers=auth, timeout=10).json()["id"] == previous
    assert requests.get(one, headers={"x-goog-api-key": OTHER}, timeout=10).status_code == 404
    assert requests.post(one + "/cancel", headers=auth, timeout=10).json()["status"] == "cancelled"
    assert requests.delete(one, headers=auth, timeout=10).status_code == 200


# -- OpenAI surface -------------------------------------------------------------------------------------------

def test_openai_files_and_chat_with_file_id(gw: GatewayHandle, fake: FakeHandle) -> None:
    client = openai.OpenAI(api_key=TOKEN, base_url=gw.v1, max_retries=0, timeout=20)
    created = client.files.create(file=("report.pdf", io.BytesIO(b"%PDF-1.4 body"), "application/pdf"),
                                  purpose="user_data")
    assert created.id.startswith("file-") and created.bytes == 13 and created.filename == "report.pdf"
    owner = owner_of(fake)
    assert client.files.retrieve(created.id).id == created.id
    assert created.id in [f.id for f in client.files.list()]
    for turn in range(4):
        chat = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": [
            {"type": "file", "file": {"file_id": created.id}}, {"type": "text", "text": f"read {turn}"}]}])
        assert "[fileData:" in (chat.choices[0].message.content or "")
    assert {r["api_key"] for r in calls(fake, ":generateContent")} == {owner}
    with pytest.raises(openai.NotFoundError):
        openai.OpenAI(api_key=OTHER, base_url=gw.v1, max_retries=0).files.retrieve(created.id)
    assert client.files.delete(created.id).deleted is True


def test_openai_chat_with_a_gemini_cache_goes_to_its_owner(gw: GatewayHandle, fake: FakeHandle) -> None:
    cache = sdk(gw).caches.create(model=MODEL, config=types.CreateCachedContentConfig(
        contents=["shared context"], ttl="300s"))
    owner = [r["api_key"] for r in calls(fake, "/v1beta/cachedContents")][-1]
    client = openai.OpenAI(api_key=TOKEN, base_url=gw.v1, max_retries=0, timeout=20)
    for turn in range(4):
        chat = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": f"q{turn}"}],
                                              extra_body={"google": {"cached_content": cache.name}})
        assert chat.choices[0].message.content == f"echo: q{turn}"
    assert {r["api_key"] for r in calls(fake, ":generateContent")} == {owner}


# -- affinity -------------------------------------------------------------------------------------------------

def _native_turn(gw: GatewayHandle, headers: dict[str, str], turn: int) -> None:
    resp = requests.post(f"{gw.url}/v1beta/models/{MODEL}:generateContent", timeout=10,
                         headers={"x-goog-api-key": TOKEN, **headers},
                         json={"contents": [{"role": "user", "parts": [{"text": f"turn {turn}"}]}]})
    assert resp.status_code == 200, resp.text


def _metric(gw: GatewayHandle, result: str) -> float:
    for line in requests.get(gw.url + "/metrics", timeout=5).text.splitlines():
        if line.startswith(f'gateway_affinity_total{{result="{result}"}}'):
            return float(line.split()[-1])
    return 0.0


@pytest.mark.parametrize("header", ["X-Session-Id", "x-claude-code-session-id", "session_id"])
def test_a_conversation_stays_on_one_key_and_moves_when_it_fails(gw: GatewayHandle, fake: FakeHandle,
                                                                  header: str) -> None:
    headers = {header: f"conv-{uuid.uuid4().hex}"}
    hits, rebinds = _metric(gw, "hit"), _metric(gw, "rebind")
    for turn in range(20):
        _native_turn(gw, headers, turn)
    used = [r["api_key"] for r in calls(fake, ":generateContent")]
    assert len(used) == 20 and len(set(used)) == 1
    assert _metric(gw, "hit") - hits == 19
    fake.script(used[0], "rpm", retry_delay="1s")
    fake_log_start = len(calls(fake, ":generateContent"))
    for turn in range(10):
        _native_turn(gw, headers, 100 + turn)
    moved = [r["api_key"] for r in calls(fake, ":generateContent")[fake_log_start:]]
    served = [k for k in moved if k != used[0]]
    assert len(served) == 10 and len(set(served)) == 1  # moved once, then stayed
    assert _metric(gw, "rebind") - rebinds == 1


@pytest.mark.parametrize("field", ["prompt_cache_key", "user"])
def test_openai_chat_affinity_from_the_body(gw: GatewayHandle, fake: FakeHandle, field: str) -> None:
    client = openai.OpenAI(api_key=TOKEN, base_url=gw.v1, max_retries=0, timeout=20)
    hint = {field: f"h-{uuid.uuid4().hex}"}
    for turn in range(20):
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": f"t{turn}"}],
                                       **hint)  # type: ignore[arg-type]
    assert len({r["api_key"] for r in calls(fake, ":generateContent")}) == 1
    for turn in range(6):  # without a hint: plain round-robin (a key cooled by an earlier test may sit out)
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": f"n{turn}"}])
    assert len({r["api_key"] for r in calls(fake, ":generateContent")[20:]}) >= 2


@pytest.mark.parametrize("stream", [False, True])
def test_coding_agent_conversations_stay_on_one_key(gw: GatewayHandle, fake: FakeHandle, stream: bool) -> None:
    """Codex (Responses, ``session_id`` header or ``prompt_cache_key``) and Claude Code (Messages,
    ``x-claude-code-session-id`` or ``metadata.user_id``) keep each conversation on one key."""
    codex = openai.OpenAI(api_key=TOKEN, base_url=gw.v1, max_retries=0, timeout=20,
                          default_headers={"session_id": f"codex-{uuid.uuid4().hex}"})
    plain = openai.OpenAI(api_key=TOKEN, base_url=gw.v1, max_retries=0, timeout=20)
    claude = anthropic.Anthropic(api_key=TOKEN, base_url=gw.url, max_retries=0, timeout=20,
                                 default_headers={"x-claude-code-session-id": f"cc-{uuid.uuid4().hex}"})
    anon = anthropic.Anthropic(api_key=TOKEN, base_url=gw.url, max_retries=0, timeout=20)
    user_id = f"user_{uuid.uuid4().hex}_account__session_{uuid.uuid4()}"
    conversations: list[Callable[[int], Any]] = [
        lambda t: codex.responses.create(model=MODEL, input=f"codex {t}", stream=stream),
        lambda t: plain.responses.create(model=MODEL, input=f"pck {t}", stream=stream,
                                         prompt_cache_key=f"pck-{user_id}"),
        lambda t: claude.messages.create(model=MODEL, max_tokens=64, stream=stream,
                                         messages=[{"role": "user", "content": f"cc {t}"}]),
        lambda t: anon.messages.create(model=MODEL, max_tokens=64, stream=stream, metadata={"user_id": user_id},
                                       messages=[{"role": "user", "content": f"meta {t}"}]),
    ]
    for turn in conversations:
        fake.reset()
        for t in range(8):
            result = turn(t)
            if stream:
                assert list(result)  # read to the end: the stream commits, the binding is made
        used = [r["api_key"] for r in fake.requests() if r["path"].lower().endswith("generatecontent")]
        assert len(used) == 8 and len(set(used)) == 1, used


def test_chat_sessions_stay_on_one_key(gw: GatewayHandle, fake: FakeHandle) -> None:
    chat_id = requests.post(f"{gw.url}/start_chat", json={"user_id": "affinity-user"}, timeout=10).json()["chat_id"]
    for turn in range(12):
        resp = requests.post(f"{gw.url}/send_message", json={"chat_id": chat_id, "message": f"m{turn}"}, timeout=10)
        assert resp.status_code == 200, resp.text
    assert len({r["api_key"] for r in calls(fake, ":generateContent")}) == 1


# -- Redis: two replicas share owners ----------------------------------------------------------------------

def test_upload_through_one_replica_used_through_another(fake_server: FakeHandle, fake: FakeHandle) -> None:
    settings = {"api_keys": POOL, "redis_url": "redis://127.0.0.1:6379/0"}
    with start_gateway(fake_server.base_url, **settings) as a, start_gateway(fake_server.base_url, **settings) as b:
        file = upload(sdk(a), 2 * MB)
        owner = owner_of(fake)
        replica_b = sdk(b)
        assert replica_b.files.get(name=file.name).name == file.name
        for turn in range(4):
            assert replica_b.models.generate_content(model=MODEL, contents=[file, f"q{turn}"]).text
        assert {r["api_key"] for r in calls(fake, ":generateContent")} == {owner}
