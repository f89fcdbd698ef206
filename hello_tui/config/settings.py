"""Typed settings, one Struct per TOML section, every key with its default.

``config.example.toml`` documents each key; a test checks the two agree.
Unknown keys are refused (``forbid_unknown_fields``) so a typo never passes
silently.
"""

from __future__ import annotations

from typing import Literal

import msgspec


class _Section(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class ServerSettings(_Section):
    # Empty: start an embedded server on loopback (the echo test works offline).
    url: str = ""
    connect_timeout: float = 5.0


class AudioSettings(_Section):
    input: str = "device:"
    output: str = "device:"
    # The processing stage on device: capture (media/audio_processing.py).
    # aec: "auto" (= true: on unless the output is a headset), "on" (a headset
    # too), "off" (= false).
    aec: bool | Literal["auto", "on", "off"] = True
    noise_suppression: bool = True
    auto_gain: bool = True
    # How device: endpoints reach the sound card (media/devices.py): "pulse" (libpulse,
    # a PulseAudio or PipeWire-pulse server), "portaudio" (ALSA...), "auto": pulse when
    # a server answers and libpulse loads, else PortAudio (the default: leaner, and since
    # session 9 the echo canceller's reference is as steady on it: docs/media.md, "The
    # pulse backend", has the figures both ways).
    backend: Literal["auto", "pulse", "portaudio"] = "auto"
    # AEC3's config: "tuned" (ours, through the shim when it is built: media/aec3_tuned.py)
    # or "default" (pywebrtc-audio's; ducks the local talker more during double talk).
    echo_tuning: Literal["tuned", "default"] = "tuned"
    # The duration of each audio packet we send, in ms, when the send path runs in C
    # (media/send_path.cpp): 10 sends each processed 10 ms block as it is made (10 ms less
    # mouth-to-ear, twice the packets; the default since session 12's side-by-side A/B);
    # 20 a packet per 20 ms frame (less bandwidth). HELLO_TUI_PTIME_MS overrides it (A/Bs).
    # docs/media.md, "10 ms packets".
    ptime_ms: Literal[10, 20] = 10


class VideoSettings(_Section):
    enabled: bool = False
    source: str = "camera:0"
    width: int = 320
    height: int = 240
    fps: int = 15


class TurnServer(_Section):
    url: str
    username: str = ""
    credential: str = ""


class IceSettings(_Section):
    # No hidden defaults (promise P8): no STUN/TURN server unless listed here.
    stun: list[str] = msgspec.field(default_factory=list)
    turn: list[TurnServer] = msgspec.field(default_factory=list)
    # "relay": only TURN relays, never a host address in our SDP (the other side
    # and its network never learn our IP; needs a TURN server). "all": any path.
    transport_policy: Literal["all", "relay"] = "all"


class AccountSettings(_Section):
    # Empty: anonymous use.
    name: str = ""
    key_file: str = ""
    # How you show yourself in rooms; empty: the account name (signed in), else none.
    display_name: str = ""


class TelemetrySettings(_Section):
    enabled: bool = False


class ContactsSettings(_Section):
    backend: Literal["toml", "sqlite"] = "toml"
    # Empty: contacts.toml / contacts.sqlite3 in the profile's data directory.
    path: str = ""


class HistorySettings(_Section):
    max_entries: int = 1000


class ControlSettings(_Section):
    # A local control socket (0600, this user only) for `hello-tui ctl`: docs/calls.md.
    socket: bool = True


class SoundsSettings(_Section):
    # Call sounds (docs/config.md): each cue on/off; never while do-not-disturb is on.
    enabled: bool = True
    connecting: bool = True
    connected: bool = True
    failed: bool = True
    joined: bool = True
    left: bool = True
    message: bool = True
    # "": the [audio] output when it is a device, else the terminal bell; or a sink spec.
    output: str = ""


class Settings(_Section):
    server: ServerSettings = msgspec.field(default_factory=ServerSettings)
    audio: AudioSettings = msgspec.field(default_factory=AudioSettings)
    video: VideoSettings = msgspec.field(default_factory=VideoSettings)
    ice: IceSettings = msgspec.field(default_factory=IceSettings)
    account: AccountSettings = msgspec.field(default_factory=AccountSettings)
    telemetry: TelemetrySettings = msgspec.field(default_factory=TelemetrySettings)
    contacts: ContactsSettings = msgspec.field(default_factory=ContactsSettings)
    history: HistorySettings = msgspec.field(default_factory=HistorySettings)
    control: ControlSettings = msgspec.field(default_factory=ControlSettings)
    sounds: SoundsSettings = msgspec.field(default_factory=SoundsSettings)
