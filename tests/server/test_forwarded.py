"""X-Forwarded-For is read only from a trusted proxy, from the right, and
anything unreadable leaves the proxy's own address (never a guess)."""

from __future__ import annotations

from unittest.mock import MagicMock

import pytest
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict

from hello_tui.server.forwarded import client_address, trusted_networks

PROXIES = ("127.0.0.2", "10.1.0.0/16", "::1")


def request(peer: str, *forwarded: str) -> object:
    transport = MagicMock()
    transport.get_extra_info.side_effect = lambda name, default=None: (
        (peer, 5555) if name == "peername" else default
    )
    headers = CIMultiDict(("X-Forwarded-For", value) for value in forwarded)
    return make_mocked_request("GET", "/ws", headers=headers, transport=transport)


@pytest.mark.parametrize(
    ("peer", "headers", "expected"),
    [
        ("127.0.0.2", ["203.0.113.7"], "203.0.113.7"),  # the proxy's word
        ("127.0.0.9", ["203.0.113.7"], "127.0.0.9"),  # anyone else's: ignored
        ("127.0.0.2", [], "127.0.0.2"),  # no header: the peer
        # The client's own claim is to the left of what the proxy appended.
        ("127.0.0.2", ["198.51.100.1, 203.0.113.7"], "203.0.113.7"),
        ("127.0.0.2", ["198.51.100.1", "203.0.113.7"], "203.0.113.7"),  # two header lines
        # A chain of trusted proxies is skipped from the right.
        ("127.0.0.2", ["203.0.113.7, 10.1.2.3"], "203.0.113.7"),
        ("127.0.0.2", ["2001:db8::5"], "2001:db8::5"),
        ("127.0.0.2", ["[2001:db8::5]:443"], "2001:db8::5"),
        ("127.0.0.2", ["203.0.113.7:40000"], "203.0.113.7"),
        ("127.0.0.2", ["::ffff:203.0.113.7"], "203.0.113.7"),
        ("::1", ["203.0.113.7"], "203.0.113.7"),
        # Unreadable, or the proxies only: the peer.
        ("127.0.0.2", ["unknown"], "127.0.0.2"),
        ("127.0.0.2", ["203.0.113.7, garbage"], "127.0.0.2"),
        ("127.0.0.2", ["10.1.0.1"], "127.0.0.2"),
        ("127.0.0.2", ["203.0.113.7," * 200], "127.0.0.2"),  # oversized
    ],
)
def test_client_address(peer: str, headers: list[str], expected: str) -> None:
    assert client_address(request(peer, *headers), PROXIES) == expected  # type: ignore[arg-type]


def test_no_trusted_proxy_means_no_header() -> None:
    assert client_address(request("127.0.0.2", "203.0.113.7"), ()) == "127.0.0.2"  # type: ignore[arg-type]


def test_a_bad_proxy_entry_is_refused() -> None:
    with pytest.raises(ValueError):
        trusted_networks(("not-an-address",))
