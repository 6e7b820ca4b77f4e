"""End-to-end fixtures: the fake Gemini upstream and the real gateway, both on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fake_gemini.process import FakeHandle, start_fake
from tests.support.gateway import GatewayHandle, start_gateway


@pytest.fixture(scope="session")
def fake_server() -> Iterator[FakeHandle]:
    with start_fake() as fake:
        yield fake


@pytest.fixture()
def fake(fake_server: FakeHandle) -> FakeHandle:
    fake_server.reset()
    return fake_server


@pytest.fixture(scope="module")
def gateway(fake_server: FakeHandle) -> Iterator[GatewayHandle]:
    """A gateway over a pool of healthy keys, shared by a module's tests."""
    with start_gateway(fake_server.base_url, api_keys=["ok-alpha-7f3a9c", "ok-beta-2b8d1e"]) as gw:
        yield gw
