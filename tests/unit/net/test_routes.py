"""Outbound routes per key: proxy URL checks, masking, and which setting wins."""

from __future__ import annotations

import pytest

from app.config import Settings, SettingsError, load_settings
from app.net.routes import DIRECT, Route, RouteError, RouteTable, mask_proxy, parse_kind, parse_proxy, \
    proxy_credentials


@pytest.mark.parametrize("url", ["http://127.0.0.1:3128", "https://proxy.example:8443",
                                 "socks5://u:p@10.0.0.1:1080", "socks5h://proxy.example", "SOCKS5://h:1"])
def test_proxy_urls_accepted(url: str) -> None:
    assert parse_proxy(url) == url


@pytest.mark.parametrize("url", ["ftp://h:21", "socks4://h:1080", "http://", "http://h:99999", "h:3128",
                                 "http://h:3128/path", "http://h:3128?x=1"])
def test_bad_proxy_urls_refused(url: str) -> None:
    with pytest.raises(RouteError):
        parse_proxy(url)


def test_direct_is_a_keyword() -> None:
    assert parse_proxy(" Direct ") == DIRECT


def test_mask_drops_credentials_and_adds_default_port() -> None:
    assert mask_proxy("socks5://user:s3cret@10.0.0.1:1080") == "socks5://10.0.0.1:1080"
    assert mask_proxy("http://user:s3cret@proxy.example") == "http://proxy.example:80"
    assert mask_proxy("http://[::1]:8080") == "http://[::1]:8080"
    assert mask_proxy(DIRECT) == DIRECT


def test_credentials_taken_apart() -> None:
    assert proxy_credentials("http://us%40r:p%3Ass@h:1") == ("http://h:1", "us@r", "p:ss")
    assert proxy_credentials("socks5://h:1") == ("socks5://h:1", None, None)


def test_kinds() -> None:
    assert parse_kind("Vertex") == "vertex"
    with pytest.raises(RouteError):
        parse_kind("openai")


def test_precedence_store_then_settings_then_default() -> None:
    table = RouteTable(default_proxy="http://d:1", proxies={"a": "socks5://s:2", "b": DIRECT},
                       kinds={"a": "vertex"})
    assert table.of("a") == Route("vertex", "socks5://s:2")
    assert table.of("b") == Route("gemini", None)          # direct beats the default
    assert table.of("c") == Route("gemini", "http://d:1")  # the default
    table.replace_overrides({"a": (DIRECT, "gemini"), "c": ("http://x:y@o:3", None)})
    assert table.of("a") == Route("gemini", None)
    assert table.of("c") == Route("gemini", "http://x:y@o:3")
    assert table.view("c") == {"kind": "gemini", "proxy": "http://o:3"}
    assert table.proxies() == ["http://d:1", "http://o:3", "socks5://s:2"]
    assert table.vertex_ids() == frozenset()


def test_vertex_ids_follow_the_settings_and_the_store() -> None:
    # Asked on every call that names no model (embeddings, files, the model list): no walk over the pool.
    table = RouteTable(kinds={"a": "vertex", "b": "gemini"})
    assert table.vertex_ids() == {"a"}
    table.replace_overrides({"a": (None, "gemini"), "c": (None, "vertex")})
    assert table.vertex_ids() == {"c"}
    table.replace_overrides({})
    assert table.vertex_ids() == {"a"}


def test_no_default_means_direct() -> None:
    assert RouteTable(default_proxy=DIRECT).of("k") == Route()
    assert RouteTable().view("k") == {"kind": "gemini", "proxy": DIRECT}


def test_settings_parse_and_name_the_bad_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_ENV_FILE", "")
    s = Settings(key_proxies="k1=socks5://h:1080,k2=direct", key_kinds='{"k3": "vertex"}',
                 outbound_proxy="http://p:3128")
    assert s.key_proxies == {"k1": "socks5://h:1080", "k2": DIRECT}
    assert s.key_kinds == {"k3": "vertex"} and s.outbound_proxy == "http://p:3128"
    assert Settings(outbound_proxy="").outbound_proxy is None
    with pytest.raises(SettingsError, match="KEY_PROXIES"):
        load_settings(key_proxies="k1=ftp://h")
    with pytest.raises(SettingsError, match="KEY_KINDS"):
        load_settings(key_kinds="k1=azure")
    with pytest.raises(SettingsError, match="OUTBOUND_PROXY"):
        load_settings(outbound_proxy="socks4://h:1")
