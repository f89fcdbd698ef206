"""``hello-tui devices``: every audio and video endpoint, as the strings
``--audio-in``, ``--audio-out`` and ``--video`` (and the config) accept.

Sound devices come from PortAudio, cameras from the system's device list
(no OpenCV needed to list them). The default device and the configured one
are marked; the forms that need no device (files, tones, silence, the test
picture) are listed too, so a machine without a sound card still shows
what it can do.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Literal

from hello_tui.cli.context import Context
from hello_tui.cli.doctor_cmd import APT_PORTAUDIO, _clean
from hello_tui.cli.output import json_flag

ALWAYS = {
    "input": ["file:PATH", "sine:HZ", "null:"],
    "output": ["file:PATH.wav", "null:"],
    "video": ["pattern:", "null:"],
}


def args_devices(p: argparse.ArgumentParser) -> None:
    json_flag(p)


def cmd_devices(args: argparse.Namespace) -> int:
    ctx = Context(args)
    settings = ctx.settings
    configured = {
        "input": settings.audio.input,
        "output": settings.audio.output,
        "video": settings.video.source,
    }
    listing, problem = _audio(configured)
    listing["video"] = _video(configured["video"])
    if args.json:
        from hello_tui.cli.output import print_json

        print_json({**listing, "always": ALWAYS, "audio_problem": problem or None})
        return 0
    titles = {
        "input": "Audio input (--audio-in, [audio] input)",
        "output": "Audio output (--audio-out, [audio] output)",
        "video": "Video (--video, [video] source)",
    }
    for kind, title in titles.items():
        print(f"{title}:")
        if kind != "video" and problem:
            print(f"  (no sound devices: {_clean(problem)})")
        elif not listing[kind]:
            print("  (none found)")
        for entry in listing[kind]:
            marks = [m for m in ("default", "configured") if entry[m]]
            note = f"  ({', '.join(marks)})" if marks else ""
            detail = f"  {entry['detail']}" if entry.get("detail") else ""
            print(f"  {_clean(entry['endpoint'])}{_clean(detail)}{note}")
        print(f"  also: {'  '.join(ALWAYS[kind])}")
    if problem:
        print(f"hello-tui: note: {APT_PORTAUDIO} if PortAudio is missing", file=sys.stderr)
    return 0


def _audio(configured: dict[str, str]) -> tuple[dict[str, list[dict[str, Any]]], str]:
    """Input and output devices as endpoint entries, and why there are none (or "")."""
    from hello_tui.media import devices
    from hello_tui.media.errors import AudioUnavailable, DeviceError

    listing: dict[str, list[dict[str, Any]]] = {"input": [], "output": []}
    try:
        found = devices.list_devices()
    except AudioUnavailable as exc:
        return listing, str(exc)
    for kind in ("input", "output"):
        k: Literal["input", "output"] = kind
        chosen = ""
        if configured[kind].startswith("device:"):
            try:
                chosen = devices.resolve_device(configured[kind].partition(":")[2], k).name
            except (AudioUnavailable, DeviceError):
                chosen = ""
        for d in found:
            channels = d.inputs if k == "input" else d.outputs
            if channels <= 0:
                continue
            listing[kind].append(
                {
                    "endpoint": f"device:{d.name}",
                    "detail": ", ".join(filter(None, (d.description, d.hostapi, f"{channels} ch"))),
                    "default": d.is_default(k),
                    "configured": d.name == chosen,
                }
            )
    return listing, ""


def _video(configured: str) -> list[dict[str, Any]]:
    from hello_tui.media.cameras import list_cameras

    return [
        {
            "endpoint": cam.endpoint,
            "detail": cam.name,
            "default": cam.index == 0,
            "configured": cam.endpoint == configured
            or (configured == "camera:" and cam.index == 0),
        }
        for cam in list_cameras()
    ]
