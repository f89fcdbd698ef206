"""``hello-tui config show|path|check|set|unset``."""

from __future__ import annotations

import argparse

# Module level is stdlib-only: the parser imports args_set/args_unset for --help.


def cmd_show(args: argparse.Namespace) -> int:
    import tomli_w

    from hello_tui.cli.context import Context
    from hello_tui.cli.output import print_json
    from hello_tui.config.loader import settings_to_dict

    ctx = Context(args)
    data = settings_to_dict(ctx.settings)
    if args.json:
        print_json(data)
    else:
        print(f"# effective settings from {ctx.paths.config_file} (defaults included)")
        print(tomli_w.dumps(data), end="")
    return 0


def cmd_path(args: argparse.Namespace) -> int:
    from hello_tui.cli.context import Context
    from hello_tui.cli.output import print_json

    ctx = Context(args)
    info = {
        "profile": ctx.paths.profile,
        "config_file": str(ctx.paths.config_file),
        "config_exists": ctx.paths.config_file.exists(),
        "data_dir": str(ctx.paths.data_dir),
    }
    if args.json:
        print_json(info)
    else:
        exists = "" if info["config_exists"] else "  (not created yet: defaults apply)"
        print(f"config: {info['config_file']}{exists}")
        print(f"data:   {info['data_dir']}")
        if ctx.paths.profile:
            print(f"profile: {ctx.paths.profile}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from hello_tui.cli.context import Context

    ctx = Context(args)
    _ = ctx.settings  # raises ConfigError (exit 1) with file, line and key
    state = "ok" if ctx.paths.config_file.exists() else "not found, defaults apply"
    print(f"{ctx.paths.config_file}: {state}")
    return 0


def args_set(p: argparse.ArgumentParser) -> None:
    p.add_argument("key", metavar="SECTION.KEY", help="e.g. server.url, audio.input")
    p.add_argument(
        "value",
        metavar="VALUE",
        help='a TOML value (true, 5, ["stun:host"]); anything else is a string',
    )


def args_unset(p: argparse.ArgumentParser) -> None:
    p.add_argument("key", metavar="SECTION.KEY")


def cmd_set(args: argparse.Namespace) -> int:
    from hello_tui.cli.context import Context
    from hello_tui.config.editor import parse_value, set_key

    ctx = Context(args)
    set_key(ctx.paths.config_file, args.key, parse_value(args.value))
    print(f"{ctx.paths.config_file}: {args.key} set")
    return 0


def cmd_unset(args: argparse.Namespace) -> int:
    from hello_tui.cli.context import Context
    from hello_tui.config.editor import unset_key

    ctx = Context(args)
    unset_key(ctx.paths.config_file, args.key)
    print(f"{ctx.paths.config_file}: {args.key} removed (default applies)")
    return 0
