"""A phone pays a process's one-off call costs when it starts, not at the first call."""

from __future__ import annotations

import threading

import pytest
from aiortc.rtcdtlstransport import RTCCertificate

from hello_tui.config.paths import resolve_paths
from hello_tui.config.settings import Settings
from hello_tui.media import aiortc_adapter, warmup
from hello_tui.session.connect import Session
from tests.call.conftest import Env


async def test_a_starting_phone_warms_the_first_calls_costs(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[str] = []
    generate = RTCCertificate.generateCertificate.__func__  # type: ignore[attr-defined]
    encode = aiortc_adapter.SpeechOpusEncoder.encode

    def certificate(cls: type[RTCCertificate]) -> RTCCertificate:
        made.append("certificate")
        return generate(cls)  # type: ignore[no-any-return]

    def encoded(self: aiortc_adapter.SpeechOpusEncoder, frame: object) -> object:
        made.append("encode")
        return encode(self, frame)  # type: ignore[arg-type]

    monkeypatch.setattr(RTCCertificate, "generateCertificate", classmethod(certificate))
    monkeypatch.setattr(aiortc_adapter.SpeechOpusEncoder, "encode", encoded)
    monkeypatch.setattr(aiortc_adapter, "_warmed", [])  # this process may have warmed already
    phone = await env.phone("alice")
    await phone.close()  # waits for the warm-up: no thread left behind
    assert made == ["certificate", "encode"]  # before any call was dialled


def test_warm_up_never_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(cls: type) -> None:
        raise RuntimeError("no OpenSSL today")

    monkeypatch.setattr(RTCCertificate, "generateCertificate", classmethod(broken))
    monkeypatch.setattr(aiortc_adapter, "_warmed", [])
    aiortc_adapter.warm_up()  # logged; the call meets it again and handles it
    assert aiortc_adapter._warmed  # and not tried again


def test_warm_up_is_paid_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[str] = []
    generate = RTCCertificate.generateCertificate.__func__  # type: ignore[attr-defined]

    def certificate(cls: type[RTCCertificate]) -> RTCCertificate:
        made.append("certificate")
        return generate(cls)  # type: ignore[no-any-return]

    monkeypatch.setattr(RTCCertificate, "generateCertificate", classmethod(certificate))
    monkeypatch.setattr(aiortc_adapter, "_warmed", [])
    aiortc_adapter.warm_up()  # the session's, while it signs in
    aiortc_adapter.warm_up()  # the phone's, when it starts: nothing left to pay
    assert made == ["certificate"]


async def test_a_session_warms_the_call_stack_before_its_phone_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A CLI call dials as soon as the session returns its phone: the phone's own
    warm-up would then run alongside the dial. The session submits it first,
    in a worker thread, while it imports and signs in."""
    seen: list[tuple[bool, bool]] = []

    def warm() -> None:
        seen.append((threading.current_thread() is threading.main_thread(), session.phone is None))

    monkeypatch.setattr(warmup, "warm_call_stack", warm)
    session = Session(resolve_paths(), Settings(), audio_in="sine:440", audio_out="null:")
    async with session:
        pass
    assert seen == [(False, True)]  # once, in a worker thread, before the phone existed
