"""A room made on one device shows its name and context on the account's other
devices (room keys sealed to each device): two profiles are two devices of one
account, linked with ``account link``/``approve`` against a real ``serve``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli.test_account_devices_cli import start_link
from tests.cli.test_account_room_cli import Cli, _start_server, _stop, unique


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    proc, url = _start_server(tmp_path_factory.mktemp("server"))
    yield url
    _stop(proc)


def rooms(cli: Cli, profile: str) -> dict[str, dict[str, Any]]:
    r = cli("--profile", profile, "room", "list", "--json")
    assert r.code == 0, r.err
    return {room["token"]: room for room in json.loads(r.out)}


def create(cli: Cli, profile: str, *args: str) -> dict[str, Any]:
    r = cli("--profile", profile, "room", "create", *args, "--json")
    assert r.code == 0, r.err
    return dict(json.loads(r.out))


def test_a_room_made_on_one_device_is_readable_on_the_other(
    cli: Cli, server: str, isolated_home: Path
) -> None:
    name = unique("erin")
    assert cli("--profile", "laptop", "account", "register", name, "--server", server).code == 0
    before = create(cli, "laptop", "Made before the phone")
    proc, code = start_link("phone", name, server)
    try:
        assert cli("--profile", "laptop", "account", "approve", code, "--yes").code == 0
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    # Made after the link: sealed to the phone at once, context included.
    made = create(cli, "laptop", "Standup", "--description", "daily, 10 minutes",
                  "--link", "https://example.org/agenda")  # fmt: skip
    on_phone = rooms(cli, "phone")
    room = on_phone[made["token"]]
    assert room["name"] == "Standup"
    assert room["description"] == "daily, 10 minutes"
    assert room["link"] == "https://example.org/agenda"
    assert room["url"].split("#k=")[1] == made["url"].split("#k=")[1]  # the same key
    # Made before the link: unreadable until a device holding its key lists rooms.
    assert on_phone[before["token"]]["name"] is None
    assert rooms(cli, "laptop")[before["token"]]["name"] == "Made before the phone"
    assert rooms(cli, "phone")[before["token"]]["name"] == "Made before the phone"
    # Another account's device sees none of it (its rooms are its own).
    other = unique("mallory")
    assert cli("--profile", "eve", "account", "register", other, "--server", server).code == 0
    assert rooms(cli, "eve") == {}
