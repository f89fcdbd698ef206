"""Which origins this server is: the names a login may be signed for, and the
browser origins that may open ``/ws``.

A login proof covers the origin the client dialled (``protocol.login_payload``).
The server must therefore know its own origins *without trusting the request*:
the ``Host`` header is chosen by whoever connects, so a relay at ``http://evil``
would simply send ``Host: evil``. What the server does know:

- ``public_url`` (and ``aliases``): the names an operator gave it. A server
  behind a proxy or reached by a DNS name needs ``public_url``.
- the local address and port the TCP connection arrived on (the socket's own
  name, not a header): ``http://127.0.0.1:5000`` for a client that dialled
  that address, plus ``localhost`` when that address is a loopback one.

A relay that forwards a victim's proof made for ``http://evil:6000`` arrives on
the real server's own address and port, which is not ``evil:6000``: refused.
Resolving names instead would invite DNS rebinding, so names come only from
the configuration.
"""

from __future__ import annotations

import functools
import ipaddress

from aiohttp import web

from hello_tui.server.settings import ServerSettings
from hello_tui.signaling.protocol import canonical_origin


def configured_origins(settings: ServerSettings) -> frozenset[str]:
    """The origins the operator named (``public_url`` and ``aliases``)."""
    return _configured(settings.public_url, settings.aliases)


@functools.lru_cache(maxsize=8)
def _configured(public_url: str, aliases: tuple[str, ...]) -> frozenset[str]:
    return frozenset(canonical_origin(url) for url in (public_url, *aliases) if url)


def socket_origins(request: web.Request) -> frozenset[str]:
    """The origins a client reaches by dialling the address this connection
    arrived on: its IP literal (and ``localhost`` if it is a loopback address)."""
    transport = request.transport
    sockname = transport.get_extra_info("sockname") if transport is not None else None
    if not sockname or not isinstance(sockname, tuple):
        return frozenset()  # a Unix socket or a closed transport: nothing to derive
    return _socket(request.scheme, str(sockname[0]), int(sockname[1]))


@functools.lru_cache(maxsize=64)
def _socket(scheme: str, host: str, port: int) -> frozenset[str]:
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return frozenset()
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    hosts = [f"[{address}]" if address.version == 6 else str(address)]
    if address.is_loopback:
        hosts.append("localhost")
    return frozenset(canonical_origin(f"{scheme}://{h}:{port}") for h in hosts)


def own_origins(request: web.Request, settings: ServerSettings) -> frozenset[str]:
    """Every origin this connection may have been dialled as. Cached: every
    connection on one listener shares one small set (10k idle connections
    must not each carry their own copy)."""
    return _union(configured_origins(settings), socket_origins(request))


@functools.lru_cache(maxsize=64)
def _union(a: frozenset[str], b: frozenset[str]) -> frozenset[str]:
    return a | b
