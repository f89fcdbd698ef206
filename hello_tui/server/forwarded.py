"""The client's address behind a reverse proxy (``X-Forwarded-For``), trusted
only from the proxies the operator named.

A proxy (HAProxy ``option forwardfor``, nginx ``proxy_add_x_forwarded_for``)
*appends* the address it accepted the connection from to the header, so the
header's rightmost entries are the ones the trusted proxies wrote and anything
to their left is whatever the client claimed. The client is therefore the
rightmost entry that is not itself a trusted proxy. A header from any other
peer is ignored: anyone can send one.

The address returned is raw: callers truncate it (``privacy.truncate_ip``) or
hash it (``Quotas.network``) on the spot and keep nothing else, exactly as with
the socket's own peer address.
"""

from __future__ import annotations

import functools
import ipaddress

from aiohttp import web

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# Longer headers are a client stuffing it (a proxy chain is a few hops): ignored.
MAX_HEADER = 1024


@functools.lru_cache(maxsize=8)
def trusted_networks(proxies: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    """``("127.0.0.1", "10.0.0.0/8")`` → networks; a bad entry raises ValueError."""
    return tuple(ipaddress.ip_network(p.strip(), strict=False) for p in proxies)


def _address(text: str) -> IPAddress | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # "[2001:db8::1]:443" (RFC 7239 style)
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # "203.0.113.7:5555"
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: IPAddress | None, networks: tuple[IPNetwork, ...]) -> bool:
    return address is not None and any(address in n for n in networks)


def client_address(request: web.Request, proxies: tuple[str, ...]) -> str | None:
    """The address the client connected from: the socket's peer, or, when that
    peer is one of ``proxies``, the rightmost untrusted ``X-Forwarded-For`` entry.

    A trusted proxy whose header is missing, too long or unreadable leaves the
    proxy's own address: never a guess."""
    peer = request.remote
    if not proxies:
        return peer
    networks = trusted_networks(proxies)
    if not _trusted(_address(peer or ""), networks):
        return peer
    header = ",".join(request.headers.getall("X-Forwarded-For", ()))
    if not header or len(header) > MAX_HEADER:
        return peer
    for entry in reversed(header.split(",")):
        address = _address(entry)
        if address is None:
            return peer
        if not _trusted(address, networks):
            return str(address)
    return peer  # every hop a trusted proxy (a health check, say): the peer itself
