"""Untrusted text cannot forge server log lines (issue 10, item 7): a crash report's
newline and ESC, or anything else a client sends that reaches a log record."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestServer
from hypothesis import given, settings
from hypothesis import strategies as st

from hello_tui.server.app import create_app
from hello_tui.server.privacy import LOGGER_NAME, escape_log, install_log_privacy, log
from hello_tui.server.settings import ServerSettings
from hello_tui.signaling import protocol as p
from tests.server.test_telemetry import body, post

FORGED = (
    "Traceback (most recent call last):\n  ok\n2026-01-01 00:00:00 ERROR admin logged in\x1b[2J\r"
)


@pytest.fixture
async def server() -> AsyncIterator[str]:
    srv = TestServer(create_app(ServerSettings(rate=0.0)), host="127.0.0.1", port=0)
    await srv.start_server()
    yield str(srv.make_url("")).rstrip("/")
    await srv.close()


def _lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER_NAME]


async def test_a_crash_report_cannot_forge_log_lines(
    server: str, caplog: pytest.LogCaptureFixture
) -> None:
    install_log_privacy()
    url = server
    crash = p.CrashReport(client_version="0.1.0", os="linux", python="3.12.1",
                          hour="2026-11-26T04", error="KeyError", traceback=FORGED)  # fmt: skip
    with caplog.at_level(logging.INFO, logger=LOGGER_NAME):
        assert (await post(url, body(crash), "/crash"))[0] == 202
    lines = _lines(caplog)
    assert any(line.startswith("crash report: KeyError") for line in lines)
    for line in lines:  # one record, one line; nothing a terminal would obey
        assert "\n" not in line and "\r" not in line and "\x1b" not in line
    forged = [line for line in lines if "admin logged in" in line]
    assert forged == ["crash | 2026-01-01 00:00:00 ERROR admin logged in\\x1b[2J"]
    # caplog formats as a file handler would: the forged text is never a record's start.
    assert not any(line.startswith("2026-01-01") for line in caplog.text.splitlines())


def test_the_filter_escapes_any_record(caplog: pytest.LogCaptureFixture) -> None:
    install_log_privacy()
    with caplog.at_level(logging.INFO, logger=LOGGER_NAME):
        log.info("hello from %s", "mum\n\u202eevil\u2028x")
    [line] = _lines(caplog)
    assert line == "hello from mum\\x0a\\u202eevil\\u2028x"


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_escape_log_is_one_printable_line(text: str) -> None:
    escaped = escape_log(text)
    assert escaped.isprintable()
    assert escape_log(escaped) == escaped
