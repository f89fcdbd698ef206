"""The pins file: trust on first use, a changed key kept apart, verified, trust."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from hello_tui.contacts.pins import FILE_NAME, KeyPins, PinError
from hello_tui.signaling.identity import generate_key, public_key_b64


def key() -> str:
    return public_key_b64(generate_key())


def test_first_key_pins_then_known_then_changed(tmp_path: Path) -> None:
    pins = KeyPins.in_dir(tmp_path)
    k1, k2 = key(), key()
    assert pins.judge("Mum@Example.org", k1) == "new"
    assert pins.record("Mum@Example.org", k1) == "new"
    assert stat.S_IMODE((tmp_path / FILE_NAME).stat().st_mode) == 0o600
    assert pins.judge("mum@example.org", k1) == "known"
    assert pins.record("MUM@EXAMPLE.ORG", k1) == "known"
    assert pins.judge("mum@example.org", k2) == "changed"
    assert pins.record("mum@example.org", k2) == "changed"
    pin = pins.get("mum@example.org")
    assert pin is not None and pin.key == k1 and pin.pending == k2
    assert pin.name == "Mum@Example.org"  # as first seen


def test_verify_needs_a_pin_and_trust_clears_it(tmp_path: Path) -> None:
    pins = KeyPins.in_dir(tmp_path)
    with pytest.raises(PinError, match="call them first"):
        pins.verify("bob")
    k1, k2 = key(), key()
    pins.record("bob", k1)
    assert pins.verify("bob").verified
    assert pins.judge("bob", k1) == "verified" and pins.record("bob", k1) == "verified"
    with pytest.raises(PinError, match="no changed key"):
        pins.trust("bob")
    pins.record("bob", k2)
    trusted = pins.trust("bob")
    assert trusted.key == k2 and not trusted.verified and not trusted.pending
    assert pins.judge("bob", k2) == "known" and pins.judge("bob", k1) == "changed"


def test_unproven_keys_are_never_pinned(tmp_path: Path) -> None:
    pins = KeyPins.in_dir(tmp_path)
    assert pins.judge("bob", "") == "unproven"
    assert pins.record("bob", "not-a-key") == "unproven"
    assert pins.all() == [] and not (tmp_path / FILE_NAME).exists()


def test_a_broken_file_is_an_error_not_a_reset(tmp_path: Path) -> None:
    path = tmp_path / FILE_NAME
    path.write_text("keys = [broken", encoding="utf-8")
    pins = KeyPins(path)
    with pytest.raises(PinError, match="not valid TOML"):
        pins.record("bob", key())
    assert path.read_text(encoding="utf-8") == "keys = [broken"  # never written over


def test_hostile_names_round_trip(tmp_path: Path) -> None:
    pins = KeyPins.in_dir(tmp_path)
    name = 'a"b\\c\x1b[2J\n]] = 1 \u202e'
    k = key()
    pins.record(name, k)
    assert pins.judge(name, k) == "known"
    assert pins.all()[0].name == name


def test_malformed_entries_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / FILE_NAME
    k = key()
    path.write_text(
        f'[keys.bob]\nname = "bob"\nkey = "{k}"\n[keys.eve]\nname = "eve"\nkey = "short"\n'
        "[keys.x]\nname = 3\n",
        encoding="utf-8",
    )
    pins = KeyPins(path)
    assert [p.name for p in pins.all()] == ["bob"]
    assert pins.judge("eve", k) == "new"


def test_echo_is_never_pinned() -> None:
    assert not KeyPins.applies("echo") and not KeyPins.applies("ECHO ")
    assert KeyPins.applies("bob") and not KeyPins.applies("")


def test_a_known_key_is_not_written_again(tmp_path: Path) -> None:
    """Each call records the peer's key once DTLS is up, on the event loop, just
    before the first audio: a known key changes nothing, so the file (and its
    fsync) is left alone; a change is still written."""
    pins = KeyPins.in_dir(tmp_path)
    k1, k2 = key(), key()
    pins.record("mum@example.org", k1)
    path = tmp_path / FILE_NAME
    written = path.stat().st_ino  # an atomic write replaces the file: a new inode
    assert pins.record("mum@example.org", k1) == "known"
    assert path.stat().st_ino == written
    assert pins.record("mum@example.org", k2) == "changed"
    assert path.stat().st_ino != written
