"""The fake's projects: resources belong to the creating key's project; another project gets Google's 403.

The gateway's ownership tests rely on this: a wrongly routed request must fail here as it would at Google.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from tests.fake_gemini.process import FakeHandle, start_fake

URI = "https://generativelanguage.googleapis.com/v1beta/"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeHandle]:
    with start_fake() as handle:
        yield handle


def upload(fake: FakeHandle, key: str, data: bytes = b"hello") -> dict:
    start = requests.post(f"{fake.url}/upload/v1beta/files", timeout=5, json={"file": {"mime_type": "text/plain"}},
                          headers={"x-goog-api-key": key, "X-Goog-Upload-Protocol": "resumable",
                                   "X-Goog-Upload-Command": "start",
                                   "X-Goog-Upload-Header-Content-Length": str(len(data))})
    assert start.status_code == 200 and start.content == b"" and start.headers["x-goog-upload-status"] == "active"
    url = start.headers["x-goog-upload-url"]
    assert url.startswith(f"{fake.url}/upload/v1beta/files?upload_id=") and "upload_protocol=resumable" in url
    half = len(data) // 2
    first = requests.post(url, data=data[:half], timeout=5,
                          headers={"X-Goog-Upload-Command": "upload", "X-Goog-Upload-Offset": "0"})
    assert first.headers["x-goog-upload-status"] == "active"
    final = requests.post(url, data=data[half:], timeout=5, headers={
        "X-Goog-Upload-Command": "upload, finalize", "X-Goog-Upload-Offset": str(half)})
    assert final.headers["x-goog-upload-status"] == "final"
    return final.json()["file"]


def generate(fake: FakeHandle, key: str, body: dict) -> requests.Response:
    return requests.post(f"{fake.base_url}/models/gemini-2.5-flash:generateContent", json=body, timeout=5,
                         headers={"x-goog-api-key": key})


def test_files_belong_to_the_project_of_the_uploading_key(fake: FakeHandle) -> None:
    file = upload(fake, "ok-one", b"0123456789")
    assert file["sizeBytes"] == "10" and file["state"] == "ACTIVE" and file["uri"] == URI + file["name"]
    body = {"contents": [{"role": "user", "parts": [{"fileData": {"fileUri": file["uri"]}}, {"text": "x"}]}]}
    assert generate(fake, "ok-one", body).status_code == 200
    foreign = generate(fake, "ok-two", body)
    assert foreign.status_code == 403
    file_id = file["name"].removeprefix("files/")
    assert foreign.json()["error"]["message"] == (
        f"You do not have permission to access the File {file_id} or it may not exist.")
    assert requests.get(f"{fake.base_url}/{file['name']}", headers={"x-goog-api-key": "ok-two"},
                        timeout=5).status_code == 403
    fake.project("ok-two", "ok-one")  # two keys of one project share its files
    assert generate(fake, "ok-two", body).status_code == 200


def test_a_chunk_with_a_key_of_another_project_is_refused(fake: FakeHandle) -> None:
    start = requests.post(f"{fake.url}/upload/v1beta/files", timeout=5, json={},
                          headers={"x-goog-api-key": "ok-one", "X-Goog-Upload-Protocol": "resumable",
                                   "X-Goog-Upload-Command": "start"})
    chunk = requests.post(start.headers["x-goog-upload-url"], data=b"x", timeout=5, headers={
        "x-goog-api-key": "ok-three", "X-Goog-Upload-Command": "upload, finalize", "X-Goog-Upload-Offset": "0"})
    assert chunk.status_code == 403


def test_caches_and_batches_are_project_scoped(fake: FakeHandle) -> None:
    created = requests.post(f"{fake.base_url}/cachedContents", timeout=5, headers={"x-goog-api-key": "ok-one"},
                            json={"model": "models/gemini-2.5-flash", "contents": [], "ttl": "60s"})
    name = created.json()["name"]
    use = {"cachedContent": name, "contents": [{"role": "user", "parts": [{"text": "q"}]}]}
    assert generate(fake, "ok-one", use).status_code == 200
    denied = generate(fake, "ok-four", use)
    assert denied.status_code == 403 and denied.json()["error"]["message"] == (
        "CachedContent not found (or permission denied)")
    batch = requests.post(f"{fake.base_url}/models/gemini-2.5-flash:batchGenerateContent", timeout=5,
                          headers={"x-goog-api-key": "ok-one"},
                          json={"batch": {"inputConfig": {"requests": {"requests": []}}}}).json()
    assert batch["metadata"]["state"] == "BATCH_STATE_PENDING"
    assert requests.get(f"{fake.base_url}/{batch['name']}", headers={"x-goog-api-key": "ok-four"},
                        timeout=5).status_code == 403
    listed = requests.get(f"{fake.base_url}/batches", headers={"x-goog-api-key": "ok-four"}, timeout=5).json()
    assert listed == {}
