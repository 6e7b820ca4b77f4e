"""Which addresses a client URL may reach: every internal range refused, v4 and v6, embedded forms too."""

from __future__ import annotations

import ipaddress

import pytest

from app.net.addresses import embedded_ipv4, is_public, parse_ip

INTERNAL = [
    "127.0.0.1", "127.255.255.254", "0.0.0.0", "10.1.2.3", "172.16.0.1", "192.168.1.1",  # loopback, private
    "169.254.169.254", "169.254.0.1",                      # link-local, AWS/GCP/Azure metadata
    "100.64.0.1", "100.100.100.200",                       # CGNAT (Alibaba metadata)
    "168.63.129.16",                                       # Azure wireserver (public-looking)
    "224.0.0.1", "239.255.255.250", "255.255.255.255",     # multicast, broadcast
    "240.0.0.1", "192.0.0.1", "198.18.0.1", "192.0.2.1",   # reserved, IETF, benchmarking, documentation
    "::1", "::", "fe80::1", "fc00::1", "fd00:ec2::254", "ff02::1", "2001:db8::1",
    "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254",  # v4-mapped
    "::127.0.0.1", "::10.0.0.1",                                     # v4-compatible
    "2002:7f00:1::", "2002:a9fe:a9fe::1",                             # 6to4 of loopback / metadata
    "64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "64:ff9b:1::a00:1",      # NAT64 of internal addresses
    "2001::1",                                                       # Teredo
    "fe80::1%eth0",                                                  # scoped
]
PUBLIC = ["8.8.8.8", "1.1.1.1", "142.250.74.78", "2607:f8b0:4004:800::200e", "::ffff:8.8.8.8",
          "64:ff9b::808:808", "2002:808:808::1"]


@pytest.mark.parametrize("text", INTERNAL)
def test_internal_addresses_are_refused(text: str) -> None:
    ip = parse_ip(text)
    assert ip is not None
    assert not is_public(ip)


@pytest.mark.parametrize("text", PUBLIC)
def test_public_addresses_pass(text: str) -> None:
    ip = parse_ip(text)
    assert ip is not None
    assert is_public(ip)


def test_embedded_ipv4_forms() -> None:
    v6 = ipaddress.IPv6Address
    assert embedded_ipv4(v6("::ffff:127.0.0.1")) == ipaddress.IPv4Address("127.0.0.1")
    assert embedded_ipv4(v6("2002:7f00:1::")) == ipaddress.IPv4Address("127.0.0.1")
    assert embedded_ipv4(v6("64:ff9b::7f00:1")) == ipaddress.IPv4Address("127.0.0.1")
    assert embedded_ipv4(v6("::7f00:1")) == ipaddress.IPv4Address("127.0.0.1")
    assert embedded_ipv4(v6("2607:f8b0::1")) is None
    assert embedded_ipv4(v6("::1")) is None


def test_parse_ip_takes_brackets_and_refuses_names() -> None:
    assert parse_ip("[::1]") == ipaddress.IPv6Address("::1")
    assert parse_ip("localhost") is None
    assert parse_ip("0x7f000001") is None   # odd spellings are resolved, then judged (test_ssrf)
