"""``python -m hello_tui.echo URL``: the echo peer as its own process.

``hello-tui serve`` starts it and writes the service key (raw Ed25519,
base64) as one line on its stdin; the peer runs until that pipe closes.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import signal
import sys

from hello_tui.media.quiet import divert_stderr


async def _main(url: str, key_b64: bytes) -> int:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from hello_tui.echo.bot import EchoBot

    key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(key_b64))
    loop = asyncio.get_running_loop()
    parent_gone = asyncio.Event()

    fd = sys.stdin.fileno()

    def stdin_readable() -> None:
        # EOF: the server closed the pipe or died. The raw fd from the loop, not a
        # thread blocked in sys.stdin's buffer: that thread held the buffer's lock,
        # and an exit with the pipe still open (the peer could not start) aborted
        # the process at shutdown ("could not acquire lock for <stdin>").
        try:
            data = os.read(fd, 4096)
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(fd)
            parent_gone.set()

    loop.add_reader(fd, stdin_readable)
    bot = EchoBot(url, key)
    try:
        try:
            await bot.start()
        except Exception as exc:
            logging.getLogger("hello_tui.echo").warning("the echo peer could not start: %s", exc)
            return 1
        try:
            await parent_gone.wait()
        finally:
            await bot.close()
        return 0
    finally:
        loop.remove_reader(fd)


def main() -> int:
    # Ctrl-C in the server's terminal reaches its whole process group: the server
    # stops and closes our pipe, which is how we end (no KeyboardInterrupt here).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if len(sys.argv) != 2:
        print("usage: python -m hello_tui.echo URL  (key on stdin)", file=sys.stderr)
        return 2
    key_line = sys.stdin.buffer.readline().strip()
    if not key_line:
        return 2
    divert_stderr()  # PortAudio/ALSA must never write over the server's terminal
    from hello_tui.server.privacy import RedactingFilter

    # It logs to the server's terminal: the same rule applies, no raw IP.
    handler = logging.StreamHandler()
    handler.addFilter(RedactingFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s echo: %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    return asyncio.run(_main(sys.argv[1], key_line))


if __name__ == "__main__":
    sys.exit(main())
