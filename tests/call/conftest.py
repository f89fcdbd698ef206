"""Real peers through the real server, over loopback.

The server is the real aiohttp app on 127.0.0.1 (an ephemeral port); every
client is the real :class:`SignalingClient`; media is real aiortc (ICE host
candidates on 127.0.0.1 only, DTLS-SRTP, Opus). Nothing is mocked. Waiting
is always on events, with timeouts.
"""

from __future__ import annotations

import contextlib
import os
import sys
import wave
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiohttp.test_utils import TestServer

from hello_tui.call.engine import CallOptions, Phone
from hello_tui.call.history_recorder import HistoryRecorder
from hello_tui.history.store import HistoryStore
from hello_tui.server.app import create_app
from hello_tui.server.settings import ServerSettings
from hello_tui.signaling.client import SignalingClient
from hello_tui.signaling.identity import generate_key
from tests.pulse import PulseDaemon

RATE = 48_000
LOOPBACK = ("127.0.0.1",)
T = 20.0  # generous timeout for any single wait (a CLI child starting under load takes >10 s)


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        assert w.getframerate() == RATE and w.getnchannels() == 1
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)


def dominant_hz(samples: np.ndarray, rate: int = RATE) -> float:
    data = samples.astype(np.float64)
    data = data - data.mean()
    spectrum = np.abs(np.fft.rfft(data * np.hanning(len(data))))
    freqs = np.fft.rfftfreq(len(data), 1 / rate)
    return float(freqs[int(np.argmax(spectrum))])


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) if len(samples) else 0.0


@dataclass
class Env:
    url: str
    tmp: Path
    clients: list[SignalingClient] = field(default_factory=list)
    phones: list[Phone] = field(default_factory=list)
    histories: list[HistoryStore] = field(default_factory=list)

    async def client(self, name: str | None = None) -> SignalingClient:
        client = SignalingClient(reconnect=None)
        await client.connect(self.url)
        self.clients.append(client)
        if name is not None:
            key = generate_key()
            await client.register(name, key)
            await client.login(name, key)
        return client

    async def phone(self, name: str | None = None, **options: Any) -> Phone:
        client = await self.client(name)
        history = HistoryStore(self.tmp / f"history-{len(self.phones)}.sqlite3")
        self.histories.append(history)
        opts = {"host_addresses": LOOPBACK, **options}
        phone = Phone(client, CallOptions(**opts))
        HistoryRecorder(history).attach(phone)
        phone.start()
        self.phones.append(phone)
        return phone

    def wav(self, name: str) -> Path:
        return self.tmp / name


StartEnv = Callable[..., Awaitable[Env]]

FAST = {"rate": 0.0, "max_connections_per_ip": 0}


@pytest.fixture
async def start_env(tmp_path: Path) -> AsyncIterator[StartEnv]:
    envs: list[tuple[Env, TestServer]] = []

    async def start(**overrides: Any) -> Env:
        settings = ServerSettings(**{**FAST, **overrides})
        server = TestServer(create_app(settings), host="127.0.0.1", port=0)
        await server.start_server()
        env = Env(str(server.make_url("/ws")), tmp_path)
        envs.append((env, server))
        return env

    yield start
    for env, server in envs:
        for phone in env.phones:
            await phone.close()
        for client in env.clients:
            await client.close()
        for history in env.histories:
            history.close()
        await server.close()


@pytest.fixture
async def env(start_env: StartEnv) -> Env:
    return await start_env()


# The device path: PulseAudio null sinks as named sound cards.
MIC = "a_mic"  # a null sink; its monitor is the ALSA capture device "a_mic"
SPEAKER = "b_spk"  # a null sink, the ALSA playback device "b_spk"


@pytest.fixture
def pulse_devices(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PulseDaemon]:
    """A private PulseAudio daemon with null sinks ``a_mic`` and ``b_spk``, seen by
    PortAudio as devices ``a_mic`` (input: ``a_mic.monitor``) and ``b_spk`` (output),
    so ``device:a_mic`` / ``device:b_spk`` name them. Play into sink ``a_mic`` and
    record ``b_spk.monitor`` (``paplay``/``parec`` with ``daemon.env``)."""
    from hello_tui.media import devices

    daemon = PulseDaemon(tmp_path_factory.mktemp("pulse"))
    try:
        daemon.start()
        for name in (MIC, SPEAKER):
            daemon.add_null_sink(name)
    except RuntimeError as exc:
        daemon.stop()
        pytest.fail(str(exc))
    conf = daemon.alsa_devices({MIC: f"{MIC}.monitor", SPEAKER: SPEAKER})
    wanted = {**daemon.env, "ALSA_CONFIG_PATH": str(conf)}
    saved = {k: os.environ.get(k) for k in wanted}
    os.environ.update(wanted)
    devices.refresh()  # PortAudio re-reads the ALSA config and finds the daemon
    try:
        yield daemon
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if "sounddevice" in sys.modules:
            with contextlib.suppress(Exception):
                devices.refresh()  # back to the devices of before
        daemon.stop()
