"""``hello-tui doctor``: one line per check, OK / WARN / FAIL, and what to do.

Checks, in order: the config file, PortAudio, the input and output devices
the config would use, a one-second input level, cameras, the server (its
welcome and protocol version), the account (signed in only to the configured
server), ICE servers, a TURN allocation with the credentials the server
hands out, and where the log file is. WARN means "works, but not fully"
(no sound card: files, tones and ``null:`` still work); FAIL means something
the user asked for cannot work as configured. Exit code 1 if any check FAILs.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # the parser imports this module for --help: stdlib only at run time
    from hello_tui.config.paths import Paths
    from hello_tui.config.settings import Settings
    from hello_tui.media.endpoint import Role

Status = Literal["OK", "WARN", "FAIL"]
APT_PORTAUDIO = "sudo apt-get install libportaudio2"
WITHOUT_DEVICES = "files (file:PATH), tones (sine:440) and null: still work"
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@dataclass(frozen=True, slots=True)
class Check:
    check: str
    status: Status
    detail: str
    fix: str = ""

    def line(self) -> str:
        fix = f" → {self.fix}" if self.fix else ""
        return f"{self.status:<4}  {self.check:<12}  {_clean(self.detail)}{_clean(fix)}"


def _clean(text: str) -> str:
    # Device names and server messages come from outside: no terminal control codes.
    return _CONTROL.sub("?", text)


def args_doctor(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-level", action="store_true", help="skip the one-second input level check")
    p.add_argument("--json", action="store_true", help="print one JSON list of the checks")


def cmd_doctor(args: argparse.Namespace) -> int:
    from hello_tui.config.paths import resolve_paths

    paths = resolve_paths(getattr(args, "config", None), getattr(args, "profile", None))
    checks: list[Check] = []
    for check in run_checks(paths, level=not args.no_level):
        checks.append(check)
        if not args.json:
            print(check.line(), flush=True)
    if args.json:
        json.dump([asdict(c) for c in checks], sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    return 1 if any(c.status == "FAIL" for c in checks) else 0


def run_checks(paths: Paths, *, level: bool = True) -> Iterator[Check]:
    """Every check, in order (each one as soon as it is known)."""
    settings, check = check_config(paths)
    yield check
    audio = list(check_audio(settings, level=level))
    yield from audio
    yield check_echo_cancel(settings.audio.echo_tuning)
    yield check_cameras(settings)
    import asyncio

    yield from asyncio.run(_network_checks(paths, settings))
    yield check_log(paths)


# ---------------------------------------------------------------- config
def check_config(paths: Paths) -> tuple[Settings, Check]:
    from hello_tui.config.loader import ConfigError, load_config
    from hello_tui.config.settings import Settings

    where = paths.config_file
    try:
        settings = load_config(where)
    except ConfigError as exc:
        fix = f"edit {where} ('hello-tui config check' repeats this); defaults are used meanwhile"
        return Settings(), Check("config", "FAIL", str(exc), fix)
    if not where.exists():
        return settings, Check("config", "OK", f"no file at {where}: the defaults apply")
    return settings, Check("config", "OK", f"{where} is valid")


# ---------------------------------------------------------------- audio
def check_audio(settings: Settings, *, level: bool) -> Iterator[Check]:
    from hello_tui.media import devices
    from hello_tui.media.endpoint import parse_endpoint
    from hello_tui.media.errors import AudioUnavailable

    try:
        sd = devices.portaudio()
    except AudioUnavailable as exc:
        yield Check(
            "portaudio",
            "WARN",
            f"PortAudio is not available ({exc}): no sound devices",
            f"{APT_PORTAUDIO}; meanwhile {WITHOUT_DEVICES}",
        )
        return
    yield Check("portaudio", "OK", str(sd.get_portaudio_version()[1]).split(",")[0])
    used_input = ""
    directions: tuple[tuple[Literal["input", "output"], Role, str], ...] = (
        ("input", "audio-source", settings.audio.input),
        ("output", "audio-sink", settings.audio.output),
    )
    for kind, role, key in directions:
        endpoint = parse_endpoint(key, role)  # validated with the config: it parses
        check, name = _device_check(kind, endpoint.kind, endpoint.arg, key)
        if kind == "input":
            used_input = name
        yield check
    if not level:
        return
    source = settings.audio.input
    if not source.startswith("device:"):
        yield Check("input-level", "OK", f"skipped: the input is {source}, not a device")
        return
    if not used_input:
        yield Check(
            "input-level", "WARN", "skipped: no input device to record from", WITHOUT_DEVICES
        )
        return
    yield _level_check(settings.audio.input)


def check_echo_cancel(echo_tuning: str = "tuned") -> Check:
    """Which AEC3 tuning a device call's echo canceller gets (docs/media.md, session 7)."""
    from hello_tui.media import aec3_tuned

    if echo_tuning == "default":
        return Check("echo-cancel", "OK", "AEC3 with pywebrtc-audio's default tuning "
                     '([audio] echo_tuning = "default")')  # fmt: skip

    try:
        aec3_tuned.load_shim()
    except aec3_tuned.ShimUnavailable as exc:
        return Check(
            "echo-cancel",
            "OK",
            f"AEC3 with pywebrtc-audio's default tuning (our tuning's shim: {exc}); it ducks "
            "your voice more while the other side talks",
        )
    return Check("echo-cancel", "OK", f"AEC3 with our tuning (shim for pywebrtc-audio "
                 f"{aec3_tuned.PINNED})")  # fmt: skip


def _device_check(
    kind: Literal["input", "output"], endpoint_kind: str, name: str, configured: str
) -> tuple[Check, str]:
    """The line for one direction, and the device name a call would open ("" if none)."""
    from hello_tui.media import devices
    from hello_tui.media.errors import AudioUnavailable, DeviceError

    label = f"audio-{kind}"
    try:
        found = devices.list_devices(kind)
    except AudioUnavailable as exc:
        found, error = [], str(exc)
    else:
        error = ""
    count = f"{len(found)} {kind} device{'s' if len(found) != 1 else ''}"
    if endpoint_kind != "device":
        detail = f"{count}; calls use {configured} (configured, no device needed)"
        return Check(label, "OK", detail), ""
    if not found:
        what = "calls send silence" if kind == "input" else "received audio is discarded"
        why = f" ({error})" if error else ""
        return Check(
            label,
            "WARN",
            f"no {kind} device{why}: {what}",
            f"plug one in or start the sound server; {WITHOUT_DEVICES}",
        ), ""
    try:
        device = devices.resolve_device(name, kind)
    except DeviceError as exc:
        return Check(
            label,
            "FAIL",
            str(exc),
            f"set [audio] {kind} to one of 'hello-tui devices', or device: for the default",
        ), ""
    except AudioUnavailable as exc:
        return Check(label, "WARN", str(exc), WITHOUT_DEVICES), ""
    default = " (the default)" if device.is_default(kind) else ""
    how = "configured" if name else "default"
    detail = f"{count}; calls use device:{device.name}{default} [{how}: {configured}]"
    return Check(label, "OK", detail), device.name


def _level_check(configured: str) -> Check:
    from hello_tui.media.errors import AudioUnavailable, DeviceError
    from hello_tui.media.probe import measure_input

    name = configured.partition(":")[2]
    try:
        level = measure_input(name, seconds=1.0)
    except (AudioUnavailable, DeviceError) as exc:
        return Check("input-level", "WARN", f"cannot record: {exc}", WITHOUT_DEVICES)
    where = f"device:{level.device.name}"
    if level.silent:
        return Check(
            "input-level",
            "WARN",
            f"{where} is silent ({level.dbfs:.0f} dBFS over {level.seconds:.1f} s)",
            "unmute the microphone or pick another input ([audio] input, 'hello-tui devices')",
        )
    return Check("input-level", "OK", f"{where}: {level.dbfs:.1f} dBFS over {level.seconds:.1f} s")


# ---------------------------------------------------------------- video
def check_cameras(settings: Settings) -> Check:
    from hello_tui.media.cameras import VIDEO_EXTRA, list_cameras, opencv_installed

    cameras = list_cameras()
    names = ", ".join(f"{c.endpoint} ({c.name})" for c in cameras)
    if not opencv_installed():
        found = f" (found: {names})" if cameras else ""
        return Check(
            "camera",
            "WARN",
            f"OpenCV is not installed: no camera video{found}; audio calls are unaffected",
            f"install the video extra: {VIDEO_EXTRA}",
        )
    source = settings.video.source
    if not cameras:
        return Check(
            "camera",
            "WARN",
            "no camera found: video calls send no picture (pattern: sends a test picture)",
            "plug a camera in (Linux: /dev/videoN)",
        )
    if source.startswith("camera:"):
        index = int(source.partition(":")[2] or 0)
        if index not in {c.index for c in cameras}:
            return Check(
                "camera",
                "WARN",
                f"[video] source is {source}, which does not exist (found: {names})",
                "set [video] source to one of those",
            )
    return Check("camera", "OK", f"{names}; video uses {source}")


# ---------------------------------------------------------------- network
async def _network_checks(paths: Paths, settings: Settings) -> list[Check]:
    """Server, account, ICE and TURN: one connection, signed in only to the configured server."""
    from hello_tui.signaling import account_local

    url = settings.server.url
    checks: list[Check] = []
    turn = [(t.url, t.username, t.credential, "config") for t in settings.ice.turn]
    if not url:
        checks.append(
            Check("server", "OK", "no server configured: calls use the embedded loopback server")
        )
        if settings.account.name:
            checks.append(
                Check(
                    "account",
                    "WARN",
                    f"{settings.account.name} is configured but [server] url is empty",
                    f"set [server] url in {paths.config_file} to the server it is registered on",
                )
            )
        else:
            checks.append(Check("account", "OK", "none (anonymous use: echo test and rooms work)"))
    else:
        from hello_tui.signaling.client import SignalingClient

        async with SignalingClient(
            connect_timeout=settings.server.connect_timeout, reconnect=None, heartbeat=None
        ) as client:
            try:
                welcome = await client.connect(url)
            except Exception as exc:
                checks.append(
                    Check(
                        "server",
                        "FAIL",
                        account_local.explain(exc),
                        f"start it ('hello-tui serve') or fix [server] url in {paths.config_file}",
                    )
                )
                checks.append(
                    Check(
                        "account",
                        "WARN",
                        "not checked: the server is unreachable",
                        "fix the server line first",
                    )
                )
            else:
                checks.append(
                    Check(
                        "server",
                        "OK",
                        f"{url} answers: protocol version {welcome.version}, "
                        f"registration {welcome.registration}",
                    )
                )
                checks.append(await _account_check(client, paths, settings, turn))
    checks.append(_ice_check(settings, turn, server=bool(url)))
    checks.extend(await _turn_checks(turn))
    return checks


async def _account_check(
    client: Any, paths: Paths, settings: Settings, turn: list[tuple[str, str, str, str]]
) -> Check:
    from hello_tui.signaling import account_local

    name = settings.account.name
    if not name:
        return Check(
            "account", "OK", "none (anonymous: others cannot call you by name)",
            "optional: 'hello-tui account register NAME'",
        )  # fmt: skip
    try:
        _, key = account_local.account_key(paths, settings)
        reply = await client.login(name, key)
    except Exception as exc:
        return Check(
            "account",
            "FAIL",
            f"cannot sign in as {name}: {account_local.explain(exc)}",
            "'hello-tui account show' says which key and server this profile uses",
        )
    turn.extend((u, ice.username, ice.credential, "server") for ice in reply.ice for u in ice.urls)
    return Check("account", "OK", f"signed in as {reply.name}")


def _ice_check(settings: Settings, turn: list[tuple[str, str, str, str]], *, server: bool) -> Check:
    stun = len(settings.ice.stun)
    from_server = sum(1 for t in turn if t[3] == "server")
    detail = (
        f"{stun} STUN, {len(turn) - from_server} TURN in the config, {from_server} from the server"
    )
    if stun or turn or not server:
        return Check("ice", "OK", detail if (stun or turn) else "loopback only (embedded server)")
    return Check(
        "ice",
        "WARN",
        f"{detail}: calls connect only where the two ends reach each other directly",
        "add [ice] stun / [[ice.turn]] servers, or run the server with --turn-url",
    )


async def _turn_checks(turn: list[tuple[str, str, str, str]]) -> list[Check]:
    from hello_tui.call.turn_check import TurnCheckError, try_allocation

    if not turn:
        return [
            Check(
                "turn",
                "WARN",
                "no TURN configured: calls between networks that block direct paths fail",
                "run coturn and 'hello-tui serve --turn-url ... --turn-secret-file ...' "
                "(docs/server.md), or add [[ice.turn]]",
            )
        ]
    checks = []
    for url, username, credential, origin in turn:
        try:
            await try_allocation(url, username, credential)
        except TurnCheckError as exc:
            checks.append(
                Check(
                    "turn",
                    "FAIL",
                    f"{url} (credentials from the {origin}): no relay allocated: {exc}",
                    "check the TURN server is up and shares the server's secret",
                )
            )
        else:
            checks.append(
                Check("turn", "OK", f"{url} allocated a relay (credentials from the {origin})")
            )
    return checks


# ---------------------------------------------------------------- logs
def check_log(paths: Paths) -> Check:
    log_file = paths.log_file
    if log_file.exists():
        return Check("log", "OK", str(log_file))
    return Check("log", "OK", f"{log_file} (not written yet)")
