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

    context = RTCCertificate._create_ssl_context

    def dtls_context(self: RTCCertificate, srtp_profiles: list[object]) -> object:
        made.append("dtls context")
        return context(self, srtp_profiles=srtp_profiles)  # type: ignore[arg-type]

    monkeypatch.setattr(RTCCertificate, "generateCertificate", classmethod(certificate))
    monkeypatch.setattr(RTCCertificate, "_create_ssl_context", dtls_context)
    monkeypatch.setattr(aiortc_adapter.SpeechOpusEncoder, "encode", encoded)
    monkeypatch.setattr(aiortc_adapter, "_warmed", False)  # this process may have warmed already
    phone = await env.phone("alice")
    await phone.close()  # waits for the warm-up: no thread left behind
    # before any call was dialled: a DTLS handshake in memory (client, server), an encode
    assert made == ["certificate", "dtls context", "certificate", "dtls context", "encode"]


def test_the_warm_up_handshake_completes() -> None:
    aiortc_adapter._warm_dtls()  # raises if the in-memory handshake stalls


def test_warm_up_never_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(cls: type) -> None:
        raise RuntimeError("no OpenSSL today")

    monkeypatch.setattr(RTCCertificate, "generateCertificate", classmethod(broken))
    monkeypatch.setattr(aiortc_adapter, "_warmed", False)
    aiortc_adapter.warm_up()  # logged; the call meets it again and handles it
    assert aiortc_adapter._warmed  # and not tried again


def test_warm_up_is_paid_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[str] = []
    generate = RTCCertificate.generateCertificate.__func__  # type: ignore[attr-defined]

    def certificate(cls: type[RTCCertificate]) -> RTCCertificate:
        made.append("certificate")
        return generate(cls)  # type: ignore[no-any-return]

    monkeypatch.setattr(RTCCertificate, "generateCertificate", classmethod(certificate))
    monkeypatch.setattr(aiortc_adapter, "_warmed", False)
    aiortc_adapter.warm_up()  # the session's, while it signs in
    aiortc_adapter.warm_up()  # the phone's, when it starts: nothing left to pay
    assert made == ["certificate", "certificate"]  # the handshake's two ends, once


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


def test_the_audio_warm_up_makes_the_first_processor(monkeypatch: pytest.MonkeyPatch) -> None:
    """The first processor of a process (the AEC3 shim's load, the library's set-up)
    is made by the session's audio warm-up, not by the call's opening thread."""
    from hello_tui.media import audio_processing, devices

    made: list[bool] = []

    def processor(config: object, *, echo_cancellation: bool) -> tuple[None, None]:
        made.append(echo_cancellation)
        return None, None

    monkeypatch.setattr(devices, "backend", lambda: "portaudio")
    monkeypatch.setattr(devices, "portaudio", lambda: None)  # no sound server needed here
    monkeypatch.setattr(audio_processing, "open_processor", processor)
    warmup.warm_audio_stack(processing=False)
    assert made == []
    warmup.warm_audio_stack(processing=True)
    assert made == [True]
