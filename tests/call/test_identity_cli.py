"""The CLI says who is calling by key: ``hello-tui call`` prints the identity
(text and JSON), warns loudly on a changed key, and ``contacts verify`` /
``contacts trust`` act on the pins the calls made."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from tests.call.conftest import Env, T
from tests.call.test_call_cli import _run, _spawn
from tests.call.test_identity_pins import person, reregister
from tests.conftest import Result


async def call_bob(env: Env, bob: Any, *flags: str) -> tuple[int, str, str]:
    """``hello-tui call bob`` as a subprocess; Bob answers; half a second of media."""
    proc = await _spawn("call", "bob", "--server", env.url, "--duration", "0.5", *flags)
    try:
        incoming = await bob.phone.next_incoming(T)
        await incoming.accept()
        out, err = await asyncio.wait_for(proc.communicate(), 3 * T)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return int(proc.returncode or 0), out.decode(), err.decode()


def identity_of(out: str) -> dict[str, Any]:
    lines = [json.loads(line) for line in out.splitlines()]
    found = [line for line in lines if line["kind"] == "identity"]
    assert len(found) == 1, out
    assert lines[-1]["identity"] == found[0]["status"]  # the stats line agrees
    return found[0]


async def test_cli_pins_warns_on_a_changed_key_and_trusts_and_verifies(
    env: Env, cli: Callable[..., Result]
) -> None:
    code, _, err = await _run("account", "register", "alice", "--server", env.url)
    assert code == 0, err
    bob = await person(env, "bob")

    code, out, err = await call_bob(env, bob, "--json")
    assert code == 0, err
    first = identity_of(out)
    assert (first["status"], first["name"], first["proven"]) == ("new", "bob", True)

    # The name is registered again with another key: the next call warns.
    bob = await reregister(env, bob)
    code, out, err = await call_bob(env, bob)
    assert code == 0, err
    warning = [line for line in out.splitlines() if line.startswith("WARNING: this is not")]
    assert len(warning) == 1 and "the bob you talked to before" in warning[0]
    assert "hello-tui contacts trust bob" in warning[0]
    keys = json.loads(cli("contacts", "keys", "--json").out)
    assert keys[0]["fingerprint"] == first["fingerprint"] and "pending" in keys[0]

    refused = cli("contacts", "verify", "bob")
    assert refused.code == 1 and "accept the new one first" in refused.err
    assert cli("contacts", "trust", "bob").code == 0
    done = cli("contacts", "verify", "bob")
    assert done.code == 0 and "marked verified" in done.out

    code, out, err = await call_bob(env, bob, "--json")
    assert code == 0, err
    assert identity_of(out)["status"] == "verified"


def test_verify_refuses_without_a_pin(cli: Callable[..., Result]) -> None:
    result = cli("contacts", "verify", "nobody")
    assert result.code == 1 and "call them first" in result.err
    assert cli("contacts", "trust", "nobody").code == 1
    assert "No account keys yet" in cli("contacts", "keys").out
