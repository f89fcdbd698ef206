"""``hello-tui privacy``: exactly what telemetry sent, what waits, and crash reports.

``hello-tui privacy`` prints whether call reports are on, then every body
kept in the local log of what was sent (the last 100), byte for byte as it
went on the wire, and what is queued. ``hello-tui privacy crashes list |
send | clear`` shows, sends (only on this explicit command, or a "yes" on an
interactive run) or deletes the crash reports saved on this device.

Module level: stdlib and hello_tui.cli only (the parser imports it for --help).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from hello_tui.cli.account_cmd import context, server_option, server_url
from hello_tui.cli.output import json_flag


def args_show(p: argparse.ArgumentParser) -> None:
    p.add_argument("--limit", type=int, default=None, metavar="N", help="only the last N sent")
    json_flag(p)


def args_crash_send(p: argparse.ArgumentParser) -> None:
    server_option(p)


def _store(args: argparse.Namespace) -> Any:
    from hello_tui.telemetry.store import TelemetryStore

    ctx = context(args)
    return ctx, TelemetryStore(ctx.paths.data_dir)


def cmd_show(args: argparse.Namespace) -> int:
    ctx, store = _store(args)
    enabled = ctx.settings.telemetry.enabled
    sent = store.sent()
    if args.limit is not None:
        sent = sent[-args.limit :] if args.limit > 0 else []
    queued = store.queued()
    crashes = store.crashes()
    if args.json:
        json.dump(
            {
                "enabled": enabled,
                "asked": store.asked,
                "sent": [e.to_json() for e in sent],
                "queued": [e.to_json() for e in queued],
                "crashes": [str(p) for p in crashes],
            },
            sys.stdout,
            ensure_ascii=False,
            indent=2,
        )
        sys.stdout.write("\n")
        return 0
    from hello_tui.telemetry.shown import privacy_lines

    for line in privacy_lines(
        store, enabled=enabled, config_file=ctx.paths.config_file, sent=sent, queued=queued
    ):
        print(line)
    return 0


def cmd_crash_list(args: argparse.Namespace) -> int:
    _ctx, store = _store(args)
    crashes = store.crashes()
    if not crashes:
        print("No crash report.")
    for path in crashes:
        print(f"{path}:")
        print(path.read_text(encoding="utf-8").rstrip())
    return 0


def cmd_crash_send(args: argparse.Namespace) -> int:
    import asyncio

    from hello_tui.cli.call_cmd import queue_crashes
    from hello_tui.telemetry.sender import endpoint, flush_for

    ctx, store = _store(args)
    if not store.crashes():
        print("No crash report to send.")
        return 0
    url = endpoint(server_url(ctx, args), "crash")
    n = queue_crashes(store, url)
    counts = asyncio.run(flush_for(store, 10.0)) or {}
    sent = counts.get("sent", 0)
    print(f"{n} crash report(s) queued for {url}; {sent} item(s) sent now"
          + ("" if sent >= n else " (the rest is retried on the next call)"))  # fmt: skip
    return 0


def cmd_crash_clear(args: argparse.Namespace) -> int:
    _ctx, store = _store(args)
    print(f"{store.clear_crashes()} crash report(s) deleted.")
    return 0
