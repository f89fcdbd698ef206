"""A phone pays a process's one-off call costs when it starts, not at the first call."""

from __future__ import annotations

import pytest
from aiortc.rtcdtlstransport import RTCCertificate

from hello_tui.media import aiortc_adapter
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
    phone = await env.phone("alice")
    await phone.close()  # waits for the warm-up: no thread left behind
    assert made == ["certificate", "encode"]  # before any call was dialled


def test_warm_up_never_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(cls: type) -> None:
        raise RuntimeError("no OpenSSL today")

    monkeypatch.setattr(RTCCertificate, "generateCertificate", classmethod(broken))
    aiortc_adapter.warm_up()  # logged; the call meets it again and handles it
