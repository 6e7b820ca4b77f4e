"""Which IP addresses a client-supplied URL may reach: public unicast only (docs/architecture.md, Security).

Pure functions over :mod:`ipaddress`. An IPv6 address that carries an IPv4 address (v4-mapped
``::ffff:a.b.c.d``, v4-compatible ``::a.b.c.d``, 6to4 ``2002:aabb:ccdd::``, NAT64 ``64:ff9b::/96`` and
``64:ff9b:1::/48``) is judged by the IPv4 address it reaches too, since a dual-stack host or a translator
delivers it there.
"""

from __future__ import annotations

import ipaddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Public-looking addresses that are cloud metadata or host services (Azure's wireserver); link-local
#: (169.254.169.254, fd00:ec2::254 is ULA) and CGNAT (Alibaba's 100.100.100.200) are refused by range anyway.
METADATA = (ipaddress.ip_network("168.63.129.16/32"),)
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_COMPAT = ipaddress.ip_network("::/96")


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for, if it is one of the transition forms."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if any(ip in net for net in _NAT64) or (ip in _COMPAT and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_public(ip: IPAddress) -> bool:
    """True for globally routable unicast addresses that are not a metadata service.

    ``is_global`` already excludes loopback, private (RFC 1918, ULA), link-local, CGNAT (100.64/10), reserved,
    documentation, benchmarking and unspecified ranges; multicast is excluded explicitly.
    """
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return False
        inner = embedded_ipv4(ip)
        if inner is not None and not is_public(inner):
            return False
    if not ip.is_global or ip.is_multicast:
        return False
    return not any(ip in net for net in METADATA)


def parse_ip(text: str) -> IPAddress | None:
    """An IP address in its canonical spelling (brackets and a zone allowed), else None."""
    try:
        return ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None
