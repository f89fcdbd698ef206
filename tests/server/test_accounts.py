"""Accounts: names bound to keys, stored only as keyed hashes (P2)."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hello_tui.cli.main import main
from hello_tui.server.accounts import name_key, normalize_name
from hello_tui.signaling import protocol as p
from tests.server.conftest import Running, StartServer, b64


async def test_register_login_logout(srv: Running) -> None:
    alice = await srv.client()
    await alice.register("Alice Liddell")
    reply = await alice.login("alice liddell")
    assert isinstance(reply, p.LoggedIn)
    await alice.send(p.Logout(ref=9))
    await alice.expect(p.Ok, ref=9)
    text = await srv.dump_text()
    assert "alice" not in text.lower()  # only the keyed hash is stored
    assert name_key(srv.hub.settings.secret, "ALICE LIDDELL") in text


def test_normalisation() -> None:
    # The stored form is the case-insensitive confusable skeleton (names.fold).
    assert normalize_name("  Ａlice ") == normalize_name("alice") == normalize_name("AL1CE")
    assert name_key(b"k" * 32, "Bob") == name_key(b"k" * 32, " bob")
    assert name_key(b"k" * 32, "bob") != name_key(b"j" * 32, "bob")


async def test_name_taken(srv: Running) -> None:
    alice = await srv.client()
    await alice.register("alice")
    mallory = await srv.client()
    await mallory.send(p.Register(name="ALICE", public_key=mallory.public_key, ref=1))
    await mallory.error("name-taken", ref=1)


async def test_bad_public_key(srv: Running) -> None:
    client = await srv.client()
    await client.send(p.Register(name="x", public_key=b64(b"short"), ref=1))
    await client.error("bad-message", ref=1)
    await client.send(p.Register(name="x", public_key="!!", ref=2))
    await client.error("bad-message", ref=2)


async def test_login_with_wrong_key_fails(srv: Running) -> None:
    alice = await srv.client()
    await alice.register("alice")
    mallory = await srv.client()
    reply = await mallory.login("alice", Ed25519PrivateKey.generate())
    assert isinstance(reply, p.Error) and reply.code == "bad-signature"
    # A login for a name that does not exist looks the same (no enumeration).
    reply = await mallory.login("nobody")
    assert isinstance(reply, p.Error) and reply.code == "bad-signature"
    # The challenge is single-use.
    await mallory.send(p.LoginProof(signature=b64(b"x" * 64), origin=mallory.origin, ref=3))
    await mallory.error("no-challenge", ref=3)


async def test_signature_replayed_on_another_session_fails(srv: Running) -> None:
    alice = await srv.client()
    await alice.register("alice")
    await alice.send(p.Login(name="alice"))
    challenge = await alice.expect(p.Challenge)
    payload = p.login_payload(challenge.nonce, alice.session, alice.origin)
    signature = b64(alice.key.sign(payload))
    await alice.send(p.LoginProof(signature=signature, origin=alice.origin))
    await alice.expect(p.LoggedIn, name="alice")
    # An eavesdropper replays nonce+signature on its own connection.
    eve = await srv.client()
    await eve.send(p.Login(name="alice"))
    await eve.expect(p.Challenge)
    await eve.send(p.LoginProof(signature=signature, origin=eve.origin, ref=5))
    await eve.error("bad-signature", ref=5)


async def test_proof_without_login_and_delete_without_account(srv: Running) -> None:
    client = await srv.client()
    await client.send(p.LoginProof(signature="AAAA", origin=client.origin, ref=1))
    await client.error("no-challenge", ref=1)
    await client.send(p.AccountDelete(ref=2))
    await client.error("auth-required", ref=2)


async def test_invite_only(start_server: StartServer, tmp_path: Path) -> None:
    srv = await start_server(registration="invite-only", data_dir=tmp_path)
    (code,) = srv.hub.invites.create(1, ttl=3600)
    assert code not in (tmp_path / "invites").read_text()  # only a digest is on disk
    client = await srv.raw()
    welcome = await client.hello()
    assert welcome.registration == "invite-only"
    await client.send(p.Register(name="a", public_key=client.public_key, ref=1))
    await client.error("invite-required", ref=1)
    await client.send(p.Register(name="a", public_key=client.public_key, invite="bogus", ref=2))
    await client.error("invite-invalid", ref=2)
    await client.register("a", invite=code)
    other = await srv.client()
    await other.send(p.Register(name="b", public_key=other.public_key, invite=code, ref=3))
    await other.error("invite-invalid", ref=3)  # consumed once


async def test_invites_from_the_cli_reach_the_running_server(
    start_server: StartServer, tmp_path: Path
) -> None:
    srv = await start_server(registration="invite-only", data_dir=tmp_path)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["serve", "invite", "--data-dir", str(tmp_path), "-n", "2"]) == 0
    codes = out.getvalue().split()
    assert len(codes) == 2
    client = await srv.client()
    await client.register("carol", invite=codes[1])


async def test_account_delete_leaves_nothing(srv: Running) -> None:
    alice = await srv.client("alice")
    laptop = await srv.client()
    laptop.key = alice.key
    assert isinstance(await laptop.login("alice"), p.LoggedIn)
    await alice.send(p.RoomCreate(name="c2VjcmV0", ref=1))
    room = (await alice.expect(p.RoomCreated)).room
    await alice.send(p.AccountDelete(ref=2))
    await alice.expect(p.Ok, ref=2)
    text = await srv.dump_text()
    for needle in (name_key(srv.hub.settings.secret, "alice"), alice.public_key, room.token):
        assert needle not in text
    assert srv.hub.sessions[laptop.session].account_key is None  # other device: logged out
    # The name is free again; the old key cannot log in.
    stranger = await srv.client()
    assert isinstance(await stranger.login("alice", alice.key), p.Error)
    await stranger.register("alice")


async def test_accounts_expire_without_login(srv: Running) -> None:
    alice = await srv.client()
    await alice.register("alice")
    srv.clock.advance(srv.hub.settings.account_ttl + 1)
    assert await srv.store.dump() == {"records": {}, "presence": {}, "sessions": {}, "owners": {}}
