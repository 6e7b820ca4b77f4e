"""SSRF (issue 12, item 1): client-named URLs reach only public addresses, through one safe fetcher.

A loopback listener records every request; for each internal spelling of its address the gateway must answer
400 "not fetchable" (no status, no reason) and the listener must see nothing.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator

import openai
import pytest

from app.net import FetchLimits, NotFetchable, SafeFetcher
from app.net.addresses import IPAddress
from tests.support.gateway import TOKEN, GatewayHandle, start_gateway
from tests.support.listener import PNG, Listener, recording_listener

FORMS = [
    "http://127.0.0.1:{port}/image.png",
    "http://localhost:{port}/image.png",
    "http://0.0.0.0:{port}/image.png",
    "http://[::1]:{port}/image.png",
    "http://[::ffff:127.0.0.1]:{port}/image.png",
    "http://[::ffff:7f00:1]:{port}/image.png",
    "http://[::127.0.0.1]:{port}/image.png",
    "http://[64:ff9b::7f00:1]:{port}/image.png",
    "http://[2002:7f00:1::]:{port}/image.png",
    "http://0x7f000001:{port}/image.png",
    "http://0177.0.0.1:{port}/image.png",
    "http://2130706433:{port}/image.png",
    "http://127.1:{port}/image.png",
    "http://user@127.0.0.1:{port}/image.png",
    "http://user:pw@localhost:{port}/image.png",
    "http://example.com@127.0.0.1:{port}/image.png",
    "http://169.254.169.254/latest/meta-data/",
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://10.0.0.1:{port}/image.png",
    "http://100.100.100.200/latest/meta-data/",
    "http://LOCALHOST:{port}/image.png",
    "http://localhost.:{port}/image.png",
]


@pytest.fixture(scope="module")
def listener() -> Iterator[Listener]:
    with recording_listener() as record:
        yield record


@pytest.fixture(scope="module")
def closed_gw(fake_server) -> Iterator[GatewayHandle]:
    with start_gateway(fake_server.base_url, api_keys=["ok-ssrf-1"]) as gw:
        yield gw


def ask(gw: GatewayHandle, url: str) -> openai.types.chat.ChatCompletion:
    client = openai.OpenAI(base_url=gw.v1, api_key=TOKEN, max_retries=0, timeout=30)
    return client.chat.completions.create(model="gemini-2.5-flash", messages=[{"role": "user", "content": [
        {"type": "text", "text": "describe"}, {"type": "image_url", "image_url": {"url": url}}]}])


@pytest.mark.parametrize("form", FORMS)
def test_internal_url_is_not_fetched(closed_gw, fake, listener, form: str) -> None:
    url = form.format(port=listener.port)
    with pytest.raises(openai.BadRequestError) as info:
        ask(closed_gw, url)
    message = info.value.body["message"]
    assert message.endswith("is not fetchable")
    assert "HTTP" not in message and "Error" not in message   # no status, no exception name
    assert info.value.body.get("param", "").endswith("image_url.url")
    assert listener.hits == []
    assert fake.requests() == []   # nothing went upstream either


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/image.png", "file:///etc/passwd",
                                 "gopher://127.0.0.1:6379/_x"])
def test_other_schemes_are_refused(closed_gw, fake, url: str) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        ask(closed_gw, url)
    assert "scheme" in info.value.body["message"]
    assert fake.requests() == []


def test_unresolvable_host_says_only_not_fetchable(closed_gw, fake) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        ask(closed_gw, "http://no-such-host.invalid/image.png")
    assert "not fetchable" in str(info.value)
    assert "resolve" not in str(info.value).lower()


async def test_redirect_to_loopback_is_refused() -> None:
    # The redirector stands for a public host: the fetcher is told that only its address (127.0.0.2) is
    # public. Every redirect target that is really loopback must be refused before it is contacted.
    with recording_listener("127.0.0.2") as public, recording_listener("127.0.0.1") as internal:
        def allowed(ip: IPAddress) -> bool:
            return str(ip) == "127.0.0.2"

        fetcher = SafeFetcher(FetchLimits(max_bytes=1024, timeout=10), allowed=allowed)
        try:
            targets = [f"http://127.0.0.1:{internal.port}/image.png", f"http://localhost:{internal.port}/x",
                       f"http://0x7f000001:{internal.port}/x", f"http://[::ffff:127.0.0.1]:{internal.port}/x"]
            for target in targets:
                with pytest.raises(NotFetchable):
                    await fetcher.fetch(f"{public.url}/redirect?to={target}")
            assert internal.hits == []
            assert len(public.hits) == len(targets)
            # A redirect between permitted addresses is followed, and a chain longer than the cap is refused.
            ok = await fetcher.fetch(f"{public.url}/redirect?to={public.url}/image.png")
            assert ok.data == PNG and ok.content_type == "image/png"
            chain = f"{public.url}/image.png"
            for _ in range(4):
                chain = f"{public.url}/redirect?to={chain}"
            with pytest.raises(NotFetchable):
                await fetcher.fetch(chain)
        finally:
            await fetcher.close()


async def test_size_cap() -> None:
    with recording_listener() as record:
        fetcher = SafeFetcher(FetchLimits(max_bytes=len(PNG) - 1, timeout=10), allow_private=True)
        try:
            with pytest.raises(NotFetchable):
                await fetcher.fetch(f"{record.url}/image.png")
        finally:
            await fetcher.close()


def test_allow_private_fetches_and_sends_inline(fake, listener) -> None:
    with start_gateway(fake.base_url, api_keys=["ok-ssrf-2"], fetch_allow_private="true") as gw:
        ask(gw, f"{listener.url}/image.png")
        assert "FETCH_ALLOW_PRIVATE is on" in gw.logs()
    parts = fake.requests()[-1]["body"]["contents"][0]["parts"]
    assert parts[1]["inlineData"] == {"mimeType": "image/png", "data": base64.b64encode(PNG).decode()}
    assert listener.hits[-1] == "/image.png"
    listener.hits.clear()


def test_client_url_fetching_off(fake, listener) -> None:
    with start_gateway(fake.base_url, api_keys=["ok-ssrf-3"], fetch_client_urls="false",
                       fetch_allow_private="true") as gw:
        with pytest.raises(openai.BadRequestError) as info:
            ask(gw, f"{listener.url}/image.png")
    assert "FETCH_CLIENT_URLS=false" in str(info.value)
    assert listener.hits == []
