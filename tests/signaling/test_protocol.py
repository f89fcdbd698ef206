"""The wire schema's validation, edge by edge: each bound accepted exactly at its
limit and refused one past it, the strictness rules, the ``ref`` salvage, the
login payload, and the exact bytes of an encoded message. Values are fixed
numbers from docs/protocol.md and docs/telemetry.md."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from hello_tui.signaling import protocol as p

ID = "abcdefgh"  # 8 characters: the shortest call id / room token
NONCE = "n" * 43
KEY = "k" * 43

# A valid client frame per type, as JSON-ready dicts.
CLIENT: dict[str, dict[str, Any]] = {
    "hello": {"type": "hello", "version": 1},
    "register": {"type": "register", "name": "ann", "public_key": "AAAA"},
    "login": {"type": "login", "name": "ann"},
    "login-proof": {"type": "login-proof", "signature": "AAAA", "origin": "http://h"},
    "call": {"type": "call", "to": "ann", "offer": "v=0"},
    "reject": {"type": "reject", "call_id": ID},
    "sas-reveal": {"type": "sas-reveal", "call_id": ID, "nonce": NONCE},
    "hangup": {"type": "hangup", "call_id": ID},
    "room-create": {"type": "room-create", "name": ""},
    "room-join": {"type": "room-join", "token": ID},
    "logout": {"type": "logout"},
}
SERVER: dict[str, dict[str, Any]] = {
    "welcome": {"type": "welcome", "version": 1, "session": ID},
    "incoming": {"type": "incoming", "call_id": ID},
    "missed": {"type": "missed", "call_id": ID},
    "accepted": {"type": "accepted", "call_id": ID},
    "call-ended": {"type": "call-ended", "call_id": ID, "reason": "hangup"},
    "rooms": {"type": "rooms", "rooms": [{"token": ID, "name": "", "expires": 0}]},
}

# (client frame type, field, the largest/smallest accepted value, the first refused one)
CLIENT_EDGES: list[tuple[str, str, Any, Any]] = [
    ("logout", "ref", 0, -1),
    ("logout", "ref", 2**53, 2**53 + 1),
    ("hello", "client", "c" * 64, "c" * 65),
    ("login", "name", "n", ""),
    ("login", "name", "n" * 254, "n" * 255),
    ("register", "public_key", "A" * 512, "A" * 513),
    ("register", "invite", "i" * 128, "i" * 129),
    ("login-proof", "origin", "o" * 300, "o" * 301),
    ("reject", "call_id", ID, ID[:7]),
    ("reject", "call_id", "x" * 64, "x" * 65),
    ("reject", "reason", "busy", "hangup"),
    ("hangup", "reason", "media-fail", "busy"),
    ("call", "offer", "s", ""),
    ("call", "offer", "s" * (48 * 1024), "s" * (48 * 1024 + 1)),
    ("sas-reveal", "nonce", NONCE, NONCE[:42]),
    ("sas-reveal", "nonce", NONCE, NONCE + "n"),
    ("room-create", "name", "c" * 1404, "c" * 1405),
    ("room-create", "ttl", 60, 59),
    ("room-create", "ttl", 366 * 86400, 366 * 86400 + 1),
]
SERVER_EDGES: list[tuple[str, str, Any, Any]] = [
    ("incoming", "caller", "c" * 254, "c" * 255),
    ("missed", "caller", "c" * 254, "c" * 255),
    ("incoming", "caller_key", KEY, KEY[:42]),
    ("incoming", "caller_key", "", KEY + "k"),
    ("accepted", "callee_key", KEY, "k"),
    ("welcome", "registration", "invite-only", "closed"),
]


def _frame(base: dict[str, Any], field: str, value: Any) -> str:
    return json.dumps({**base, field: value})


@pytest.mark.parametrize(("kind", "field", "ok", "bad"), CLIENT_EDGES)
def test_client_field_edges(kind: str, field: str, ok: Any, bad: Any) -> None:
    message = p.decode_client(_frame(CLIENT[kind], field, ok))
    assert getattr(message, field) == ok
    with pytest.raises(p.ProtocolError) as caught:
        p.decode_client(_frame(CLIENT[kind], field, bad))
    assert caught.value.code == "bad-message"


@pytest.mark.parametrize(("kind", "field", "ok", "bad"), SERVER_EDGES)
def test_server_field_edges(kind: str, field: str, ok: Any, bad: Any) -> None:
    assert getattr(p.decode_server(_frame(SERVER[kind], field, ok)), field) == ok
    with pytest.raises(p.ProtocolError):
        p.decode_server(_frame(SERVER[kind], field, bad))


@pytest.mark.parametrize("kind", CLIENT)
def test_every_valid_client_frame_round_trips(kind: str) -> None:
    message = p.decode_client(json.dumps(CLIENT[kind]))
    assert p.decode_client(p.encode(message)) == message


def test_frame_size_bound_is_64_kib() -> None:
    assert p.MAX_MESSAGE_BYTES == 65536
    frame = '{"type":"logout"}'
    at_limit = frame + " " * (65536 - len(frame))  # JSON allows trailing whitespace
    assert p.decode_client(at_limit) == p.Logout()
    assert p.decode_server('{"type":"ok"}' + " " * (65536 - 13)) == p.Ok()
    with pytest.raises(p.ProtocolError) as caught:
        p.decode_client(at_limit + " ")
    assert caught.value.code == "too-big" and str(caught.value) == "message over 65536 bytes"
    with pytest.raises(p.ProtocolError, match="message over 65536 bytes"):
        p.decode_server(at_limit.encode() + b" ")


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ('{"type":"logout","extra":1}', "bad-message"),  # unknown fields are refused
        ('{"type":"welcome","version":1,"session":"abcdefgh"}', "bad-message"),  # server-only
        ('{"type":"nope"}', "bad-message"),
        ("not json", "bad-message"),
        ('{"type":"hello","version":"1"}', "bad-message"),
    ],
)
def test_strict_decoding(frame: str, code: str) -> None:
    with pytest.raises(p.ProtocolError) as caught:
        p.decode_client(frame)
    assert caught.value.code == code


def test_unknown_fields_refused_in_nested_structs_too() -> None:
    rooms = {"type": "rooms", "rooms": [{"token": ID, "name": "", "expires": 0, "x": 1}]}
    with pytest.raises(p.ProtocolError):
        p.decode_server(json.dumps(rooms))
    welcome = {"type": "welcome", "version": 1, "session": ID, "ice": [{"urls": [], "x": 1}]}
    with pytest.raises(p.ProtocolError):
        p.decode_server(json.dumps(welcome))


@pytest.mark.parametrize(
    ("frame", "ref"),
    [
        ('{"type":"nope","ref":7}', 7),
        ('{"type":"nope","ref":0}', 0),
        ('{"type":"nope","ref":-1}', None),
        ('{"type":"nope","ref":true}', None),
        ('{"type":"nope","ref":"7"}', None),
        ('{"type":"nope"}', None),
        ("[1,2", None),
    ],
)
def test_an_invalid_request_keeps_its_ref(frame: str, ref: int | None) -> None:
    with pytest.raises(p.ProtocolError) as caught:
        p.decode_client(frame)
    assert caught.value.code == "bad-message" and caught.value.ref == ref


def test_nesting_too_deep_is_an_error_reply_not_a_crash() -> None:
    deep = '{"ref":' + "[" * 30_000 + "]" * 30_000 + "}"  # under 64 KiB
    with pytest.raises(p.ProtocolError) as caught:
        p.decode_client(deep)
    assert (caught.value.code, str(caught.value), caught.value.ref) == (
        "bad-message",
        "nested too deeply",
        None,
    )


def test_encoding_omits_defaults_exactly() -> None:
    assert p.encode(p.Logout()) == b'{"type":"logout"}'
    assert (
        p.encode(p.Hangup(call_id=ID, ref=3)) == b'{"type":"hangup","call_id":"abcdefgh","ref":3}'
    )
    assert p.encode(p.Reconnect()) == b'{"type":"reconnect"}'
    assert p.Reconnect().after_ms == 1000
    assert p.encode(p.IceServer(urls=["turn:h"])) == b'{"urls":["turn:h"]}'
    info = p.RoomInfo(token=ID, name="", expires=5)
    assert p.encode(info) == b'{"token":"abcdefgh","name":"","expires":5}'


def test_defaults() -> None:
    assert (p.Call(to="a", offer="v").video, p.Incoming(call_id=ID).video) == (False, False)
    assert (p.Incoming(call_id=ID).caller, p.Missed(call_id=ID).video) == ("", False)
    assert p.Reject(call_id=ID).reason == "rejected" and p.Hangup(call_id=ID).reason == "hangup"
    assert p.Welcome(version=1, session=ID).registration == "open"
    assert p.RoomInfo(token=ID, name="", expires=0).participants == 0
    with pytest.raises(TypeError):
        p.Logout(1)  # type: ignore[call-arg]  # keyword-only


def test_login_payload_is_exact() -> None:
    # The payload says "protocol 1" whatever version is spoken: version 2 clients
    # sign the same bytes as version 1 ones (an old client still logs in).
    assert p.PROTOCOL_VERSIONS == (1, 2)
    assert p.login_payload("N", "S", "https://h.example") == (
        b"hello-tui login v2\nprotocol 1\norigin https://h.example\nsession S\nnonce N"
    )


@pytest.mark.parametrize(
    ("value", "words", "word"),
    [
        ("busy", p.END_REASONS, "busy"),
        ("relay", p.CANDIDATE_TYPES, "relay"),
        ("host", p.CANDIDATE_TYPES, "host"),
        ("Busy", p.END_REASONS, None),
        (None, p.NETWORK_TYPES, None),
    ],
)
def test_one_of(value: object, words: tuple[str, ...], word: str | None) -> None:
    assert p.one_of(value, words) == word


def test_protocol_error_carries_code_and_ref() -> None:
    error = p.ProtocolError("rate-limited", "slow down", 4)
    assert (error.code, error.ref, str(error)) == ("rate-limited", 4, "slow down")
    assert p.ProtocolError("internal", "x").ref is None


# ---------------------------------------------------------------- telemetry bodies

CALL_REPORT: dict[str, Any] = {
    "daily_id": "0" * 32, "client_version": "1.2.3", "os": "linux", "hour": "2026-11-26T04",
    "direction": "outgoing", "outcome": "completed", "reason": "hangup", "stage": "connected",
}  # fmt: skip
FEEDBACK: dict[str, Any] = {
    "rating": "happy", "client_version": "1.0", "os": "bsd", "hour": "2026-11-26T04",
}  # fmt: skip
CRASH: dict[str, Any] = {
    "client_version": "1.0", "os": "macos", "python": "3.11.7", "hour": "2026-11-26T04",
    "error": "ValueError",
}  # fmt: skip

BODY_EDGES: list[tuple[type[Any], dict[str, Any], str, Any, Any]] = [
    (p.CallReport, CALL_REPORT, "v", 2, 3),  # version 2: shared_s (docs/telemetry.md)
    (p.CallReport, CALL_REPORT, "v", 1, 0),
    (p.CallReport, CALL_REPORT, "duration_s", 7 * 86400, 7 * 86400 + 1),
    (p.CallReport, CALL_REPORT, "duration_s", 0.0, -0.5),
    (p.CallReport, CALL_REPORT, "setup_ms", 3_600_000, 3_600_001),
    (p.CallReport, CALL_REPORT, "setup_ms", 0, -1),
    (p.CallReport, {**CALL_REPORT, "v": 2}, "shared_s", 7 * 86400, 7 * 86400 + 1),
    (p.CallReport, {**CALL_REPORT, "v": 2}, "shared_s", 0.0, -0.5),
    (p.CallReport, CALL_REPORT, "shared_s", None, 1.0),  # in a version 1 body
    (p.CallReport, CALL_REPORT, "client_version", "1" * 32, "1" * 33),
    (p.FeedbackReport, FEEDBACK, "v", 1, 2),
    (p.FeedbackReport, FEEDBACK, "v", 1, 0),
    (p.FeedbackReport, FEEDBACK, "reasons", ["other"] * 6, ["other"] * 7),
    (p.CrashReport, CRASH, "v", 1, 2),
    (p.CrashReport, CRASH, "v", 1, 0),
    (p.CrashReport, CRASH, "python", "3.11.10000000000", "3.11.100000000000"),  # 16 / 17 chars
    (p.CrashReport, CRASH, "command", "c" * 32, "c" * 33),
    (p.CrashReport, CRASH, "error", "E" * 100, "E" * 101),
    (p.CrashReport, CRASH, "traceback", "t" * 16384, "t" * 16385),
]

QUALITY_EDGES: list[tuple[str, Any, Any]] = [
    ("samples", 2**40, 2**40 + 1),
    ("samples", 0, -1),
    ("packets_lost", 2**40, 2**40 + 1),
    ("rtt_ms_p95", 3_600_000, 3_600_001),
    ("fraction_lost_p50", 1, 1.001),
    ("fraction_lost_p95", 0, -0.001),
    ("mos_mean", 5, 5.001),
    ("mos_min", 0, -0.001),
    ("codec", "opus/48000/2" + "0" * 20, "opus/48000/2" + "0" * 21),  # 32 / 33 characters
]


@pytest.mark.parametrize(("kind", "base", "field", "ok", "bad"), BODY_EDGES)
def test_telemetry_body_edges(
    kind: type[Any], base: dict[str, Any], field: str, ok: Any, bad: Any
) -> None:
    assert getattr(msgspec.json.decode(_frame(base, field, ok), type=kind), field) == ok
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(_frame(base, field, bad), type=kind)


@pytest.mark.parametrize(("field", "ok", "bad"), QUALITY_EDGES)
def test_quality_report_edges(field: str, ok: Any, bad: Any) -> None:
    report = {**CALL_REPORT, "quality": {field: ok}}
    decoded = msgspec.json.decode(json.dumps(report), type=p.CallReport)
    assert getattr(decoded.quality, field) == ok
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(json.dumps({**CALL_REPORT, "quality": {field: bad}}), type=p.CallReport)


def test_telemetry_bodies_refuse_unknown_fields_and_default_exactly() -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(json.dumps({**FEEDBACK, "name": "ann"}), type=p.FeedbackReport)
    report = msgspec.json.decode(json.dumps(CALL_REPORT), type=p.CallReport)
    assert (report.v, report.room, report.duration_s, report.setup_ms) == (1, False, 0.0, None)
    assert report.network_type == "unknown" and report.quality == p.QualityReport()
    quality = p.QualityReport()
    assert (quality.samples, quality.packets_lost, quality.packets_received) == (0, 0, 0)
    crash = msgspec.json.decode(json.dumps(CRASH), type=p.CrashReport)
    assert (crash.v, crash.command, crash.traceback) == (1, "", "")
    feedback = msgspec.json.decode(json.dumps(FEEDBACK), type=p.FeedbackReport)
    assert (feedback.v, feedback.reasons) == (1, [])
    assert p.encode_body(p.QualityReport(samples=3)).startswith(b'{"samples":3,')
    with pytest.raises(TypeError):
        p.QualityReport(3)  # type: ignore[misc]  # keyword-only


def test_telemetry_size_bounds() -> None:
    assert (p.TELEMETRY_VERSION, p.MAX_TELEMETRY_BYTES, p.MAX_CRASH_BYTES) == (2, 8192, 24576)
