"""Where a device call's mouth-to-ear goes, per stage (never imported by hello-tui).

Put this folder first on ``PYTHONPATH`` with ``HELLO_TUI_M2E_TRACE=DIR``: each
hello-tui process appends one line per audio event to ``DIR/<command>-<pid>.m2e``
(``time.monotonic()``: one clock across the processes of one machine), and
``bench/mouth_to_ear_budget.py DIR`` turns them into the per-stage table:

* ``C t age proc``: a capture callback at ``t``; ``age`` = PortAudio's callback
  time minus the ADC time of the first sample of the 20 ms frame it completes (the
  frame plus the input latency); ``proc`` = the seconds the callback took (the processing stage);
* ``P t``: the block reached the event loop (``call_soon_threadsafe`` hop);
* ``R t``: the sender took a frame (``recv()`` returned);
* ``S t ssrc seq`` / ``I t ssrc seq``: an RTP packet sent / arrived (the header is
  in clear under SRTP), paired across the two processes by (ssrc, seq);
* ``K t n``: a decoded frame of ``n`` samples went into the playout buffer;
* ``Q t n priming under card told``: every speaker callback (a pull of ``n``; ``under``:
  the card ran dry before it; ``card``: its DAC time minus its callback time, -1
  unknown; ``told``: the pulse server's underflow messages so far, -1 on PortAudio);
* ``O t resid card depth target``: a speaker callback; ``resid`` = how long the
  first sample it pulls sat in the playout buffer, less its offset in its frame
  (so it adds to the frame's first sample's delay), ``card`` = PortAudio's DAC
  time minus its callback time; ``depth`` / ``target`` in ms before the pull.
  With the speaker path in C (``HELLO_TUI_NATIVE_SPEAKER=1``) C keeps a record per
  block and the ``Q``/``O`` lines are written from them at the next push.

``HELLO_TUI_M2E_SET`` (with or without the trace) overrides the latency settings for an
A/B run, comma-separated: ``sources.MIC_LATENCY=0.01``, ``sources.MIC_BLOCK=480``,
``sinks.SPEAKER_LATENCY=0.015``, ``playout.min_target_ms=15`` (a field of
``sinks.DEVICE_PLAYOUT``), ``output_latency.LADDER=low/0.04/0.08``,
``pulse_streams.LOW_LATENCY_S=0.035``.
"""

from __future__ import annotations

import collections
import dataclasses
import importlib.abc
import importlib.machinery
import os
import sys
import time

RATE = 48_000
FRAME = 960  # the 20 ms frame sent
_fd: list[int] = []


def _say(line: str) -> None:
    if not _fd:
        role = sys.argv[1] if len(sys.argv) > 1 else "x"
        path = os.path.join(os.environ["HELLO_TUI_M2E_TRACE"], f"{role}-{os.getpid()}.m2e")
        _fd.append(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
    os.write(_fd[0], (line + "\n").encode())


def _rtp_id(data: bytes) -> tuple[int, int] | None:
    """(ssrc, seq) of an RTP packet; None for RTCP (payload types 200-207) or runts."""
    if len(data) < 12 or 192 <= data[1] <= 223:
        return None
    return int.from_bytes(data[8:12], "big"), int.from_bytes(data[2:4], "big")


def _patch_sources(mod) -> None:
    cls = mod.DeviceSource
    callback, push, recv = cls._callback, cls._push, cls.recv

    def _callback(self, indata, frames, when, status):
        t = time.monotonic()
        callback(self, indata, frames, when, status)
        adc = when.inputBufferAdcTime
        age = when.currentTime - adc if adc else -1.0
        if age >= 0 and frames < FRAME:  # the frame's first sample came blocks earlier
            age += (FRAME - frames) / RATE
        _say(f"C {t:.6f} {age:.6f} {time.monotonic() - t:.6f}")

    def _push(self, block):
        _say(f"P {time.monotonic():.6f}")
        push(self, block)

    async def _recv(self):
        frame = await recv(self)
        _say(f"R {time.monotonic():.6f}")
        return frame

    cls._callback, cls._push, cls.recv = _callback, _push, _recv


def _pulled(st, t, frames, priming, under, card, told, depth, target, pushed) -> None:
    """The ``Q`` and ``O`` lines of one speaker block (depth and target in samples
    before its pull; ``pushed``: the samples pushed before it)."""
    _say(f"Q {t:.6f} {frames} {int(priming)} {under} {card:.6f} {told}")  # every pull
    if st is None or priming:
        return
    first = pushed - depth  # index of the first sample this pull took
    q = st["q"]
    while q and q[0][0] + q[0][1] <= first:
        q.popleft()
    if not q or q[0][0] > first:
        return
    start, _, t_push = q[0]
    resid = t - t_push - (first - start) / RATE
    _say(f"O {t:.6f} {resid:.6f} {card:.6f} {depth * 1000 / RATE:.2f} {target * 1000 / RATE:.2f}")


def _patch_sinks(mod) -> None:
    cls = mod.DeviceSink
    consume, callback = cls._consume, cls._callback

    def _drain_native(self, st) -> None:
        # The speaker path in C (HELLO_TUI_NATIVE_SPEAKER=1): no Python callback per block;
        # C keeps a record per block, taken here (once per frame pushed).
        native = getattr(self, "_native", None)
        if native is None:
            return
        if not st.get("traced"):
            st["traced"] = True
            native.trace(True)
        while records := native.trace_take():
            for t, n, priming, under, card, told, depth, target, pushed in records:
                _pulled(st, t, int(n), bool(priming), int(under), card, int(told),
                        int(depth), int(target), int(pushed))  # fmt: skip

    def _consume(self, samples):
        st = self.__dict__.setdefault("_m2e", {"pushed": 0, "q": collections.deque()})
        _drain_native(self, st)
        t = time.monotonic()
        st["q"].append((st["pushed"], len(samples), t))
        st["pushed"] += len(samples)
        _say(f"K {t:.6f} {len(samples)}")
        consume(self, samples)

    def _callback(self, outdata, frames, when, status):
        t = time.monotonic()
        buf = self.buffer
        depth, priming, target = buf.depth, buf._priming, buf.target
        callback(self, outdata, frames, when, status)
        st = self.__dict__.get("_m2e")
        dac = when.outputBufferDacTime
        card = dac - when.currentTime if dac else -1.0
        under = int(bool(status.output_underflow))
        told = getattr(self._stream, "underflows", -1)  # the pulse server's own messages
        pushed = st["pushed"] if st is not None else 0
        _pulled(st, t, frames, priming, under, card, told, depth, target, pushed)

    cls._consume, cls._callback = _consume, _callback


def _patch_dtls(mod) -> None:
    cls = mod.RTCDtlsTransport
    send, handle = cls._send_rtp, cls._handle_rtp_data

    async def _send_rtp(self, data):
        ident = _rtp_id(data)
        if ident is not None:
            _say(f"S {time.monotonic():.6f} {ident[0]} {ident[1]}")
        return await send(self, data)

    async def _handle_rtp_data(self, data, arrival_time_ms):
        ident = _rtp_id(data)
        if ident is not None:
            _say(f"I {time.monotonic():.6f} {ident[0]} {ident[1]}")
        return await handle(self, data, arrival_time_ms)

    cls._send_rtp, cls._handle_rtp_data = _send_rtp, _handle_rtp_data


def _value(text: str):
    if "/" in text:
        return tuple(_value(x) for x in text.split("/"))
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def _settings(module: str) -> dict[str, object]:
    out = {}
    for item in filter(None, os.environ.get("HELLO_TUI_M2E_SET", "").split(",")):
        key, _, value = item.partition("=")
        mod, _, name = key.strip().partition(".")
        if mod == module:
            out[name] = _value(value.strip())
    return out


def _override(mod) -> None:
    short = mod.__name__.rsplit(".", 1)[1]
    for name, value in _settings(short).items():
        setattr(mod, name, value)
        if name == "LADDER":  # a default argument: bound when the class was made
            init = mod.LatencyPolicy.__init__
            init.__defaults__ = (value, *init.__defaults__[1:])
    if short == "sinks":
        fields = _settings("playout")
        if fields:
            mod.DEVICE_PLAYOUT = dataclasses.replace(mod.DEVICE_PLAYOUT, **fields)
            if hasattr(mod, "NATIVE_DEVICE_PLAYOUT"):  # the speaker written from C
                mod.NATIVE_DEVICE_PLAYOUT = dataclasses.replace(mod.NATIVE_DEVICE_PLAYOUT, **fields)


def _patch_and_set(patch):
    def apply(mod) -> None:
        _override(mod)
        if os.environ.get("HELLO_TUI_M2E_TRACE"):
            patch(mod)

    return apply


PATCHES = {
    "hello_tui.media.sources": _patch_sources,
    "hello_tui.media.sinks": _patch_sinks,
    "aiortc.rtcdtlstransport": _patch_dtls,
    "hello_tui.media.output_latency": lambda mod: None,
    "hello_tui.media.pulse_streams": lambda mod: None,
}
PATCHES = {name: _patch_and_set(patch) for name, patch in PATCHES.items()}


class _Loader(importlib.abc.Loader):
    def __init__(self, inner) -> None:
        self.inner = inner

    def create_module(self, spec):
        return self.inner.create_module(spec)

    def exec_module(self, module) -> None:
        self.inner.exec_module(module)
        PATCHES[module.__name__](module)


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name not in PATCHES:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _Loader(spec.loader)
        return spec


if os.environ.get("HELLO_TUI_M2E_TRACE") or os.environ.get("HELLO_TUI_M2E_SET"):
    sys.meta_path.insert(0, _Finder())
