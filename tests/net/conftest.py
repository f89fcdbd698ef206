"""Fixtures for the namespace Internet (tests/net/internet.py, services.py).

One Internet and one pair of public services per test module (building them
costs seconds, a test's own profile a few nft rules); the namespaces and
every process in them go at the end, whatever happened.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.net.internet import Internet, internet, unavailable
from tests.net.services import Home, Public, ServiceUnavailable, public_services


@dataclass
class World:
    net: Internet
    public: Public
    alice: Home  # home 1, account "alice"
    bob: Home  # home 2, account "bob"


@pytest.fixture(scope="module")
def net() -> Iterator[Internet]:
    reason = unavailable()
    if reason is not None:
        pytest.skip(reason)
    with internet() as built:
        yield built


@pytest.fixture(scope="module")
def world(net: Internet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("net")
    try:
        services = public_services(net, root / "public")
        public = services.__enter__()
    except ServiceUnavailable as exc:
        pytest.skip(str(exc))
    try:
        alice, bob = public.home(1, root), public.home(2, root)
        for home, name in ((alice, "alice"), (bob, "bob")):
            done = home.run("account", "register", name, "--server", public.url)
            assert done.returncode == 0, done.stderr
        yield World(net, public, alice, bob)
    finally:
        services.__exit__(None, None, None)
