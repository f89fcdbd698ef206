"""The CLI keeps its promises (issue 11): one line on stderr for every error,
the right exit code, the command's own usage, quiet when the reader leaves, one
rule for naming a contact, and a question before deleting on a partial name.
Each case here is a row of docs/cli-errors.md."""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
from collections.abc import Callable

import pytest

from hello_tui.cli.call_cmd import resolve_target
from hello_tui.cli.context import Context
from hello_tui.cli.errors import CliError
from tests.conftest import Result

Cli = Callable[..., Result]


def one_line(r: Result) -> str:
    lines = r.err.splitlines()
    assert len(lines) == 1, r.err
    return lines[0]


def test_a_missing_audio_file_is_one_line_before_dialling(cli_proc: Cli) -> None:
    r = cli_proc("call", "echo", "--audio-in", "file:/nonexistent/hello.wav")
    assert r.code == 1 and r.out == ""
    assert one_line(r) == "hello-tui: error: audio input file:/nonexistent/hello.wav: no such file"


def test_an_unreachable_server_is_one_line_exit_3(cli_proc: Cli) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    r = cli_proc("call", "echo", "--server", f"http://127.0.0.1:{port}")
    assert r.code == 3
    assert one_line(r) == (
        f"hello-tui: error: cannot reach the server at ws://127.0.0.1:{port}/ws: connection refused"
    )  # and no "Unclosed client session" after it


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("call", "echo", "--bogus"), "hello-tui call: error: unrecognized arguments: --bogus"),
        (("contacts", "list", "--nope"), "hello-tui contacts list: error: unrecognized arguments"),
        (
            ("call", "echo", "--server", "htp:/x"),
            "hello-tui call: error: argument --server: 'htp:/x' is not a server URL",
        ),
        (
            ("room", "list", "--server", "http://h:99999"),
            "hello-tui room list: error: argument --server: 'http://h:99999' is not a server",
        ),
    ],
)
def test_usage_errors_show_the_commands_own_usage(
    cli: Cli, args: tuple[str, ...], error: str
) -> None:
    r = cli(*args)
    assert r.code == 2
    usage = " ".join(args[:2]) if args[0] == "contacts" or args[0] == "room" else args[0]
    assert r.err.startswith(f"usage: hello-tui {usage} "), r.err
    assert r.err.splitlines()[-1].startswith(error), r.err


def test_a_reader_that_leaves_gets_silence_not_an_error(cli: Cli) -> None:
    for i in range(3):
        assert cli("contacts", "add", f"Person {i}").code == 0
    for args in (["contacts", "list"], ["contacts", "list", "--json"], ["history"]):
        proc = subprocess.Popen(
            [sys.executable, "-m", "hello_tui", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
            env=dict(os.environ),
        )  # fmt: skip
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()  # like `| head` that already has what it wanted
        err = proc.stderr.read().decode()
        proc.stderr.close()
        assert proc.wait(60) == 141, (args, err)  # what a shell shows for SIGPIPE
        assert err == "", (args, err)


def _target(text: str) -> tuple[str, str, bool]:
    return resolve_target(Context(argparse.Namespace(config=None, profile=None)), text)


def test_call_names_a_contact_the_way_contacts_show_does(cli: Cli) -> None:
    assert cli("contacts", "add", "Zoë Durand", "--email", "zoe@example.org").code == 0
    assert cli("contacts", "add", "Bob Martin", "--email", "bob@example.org").code == 0
    assert cli("contacts", "add", "Bob Dylan", "--email", "dylan@example.org").code == 0
    assert cli("contacts", "show", "Zoë").code == 0
    assert _target("Zoë") == ("zoe@example.org", "Zoë Durand", False)  # a part of the name
    assert _target("zoe durand") == ("zoe@example.org", "Zoë Durand", False)
    assert _target("BOB@example.org") == ("bob@example.org", "Bob Martin", False)
    with pytest.raises(CliError, match=r"'Bob' matches several contacts: Bob (Dylan|Martin)"):
        _target("Bob")  # never the literal account name "Bob"
    assert _target("carol@example.org") == ("carol@example.org", "carol@example.org", False)
    assert _target("echo") == ("echo", "echo", False)


def test_deleting_on_a_partial_name_asks_first(cli: Cli) -> None:
    assert cli("contacts", "add", "Zoë Durand", "--email", "zoe@example.org").code == 0
    assert cli("contacts", "add", "Ann Lee").code == 0
    r = cli("contacts", "rm", "Zoë")  # no terminal to ask on: refuse
    assert r.code == 1 and "only partly matches Zoë Durand" in one_line(r) and "--yes" in r.err
    r = cli("contacts", "block", "Zoë")
    assert r.code == 1 and "not blocked without --yes" in r.err
    assert cli("contacts", "show", "zoe@example.org").code == 0  # still there
    r = cli("contacts", "rm", "Zoë", "--yes")
    assert r.code == 0 and r.out.startswith("Deleted Zoë Durand")
    r = cli("contacts", "rm", "Ann Lee")  # the whole name: no question
    assert r.code == 0 and r.out.startswith("Deleted Ann Lee")
