"""The pty's reader, in a process of its own: pty master (fd 0) → pipe (fd 1).

Run as ``python -I -S pump.py`` by :mod:`.pty_process`; standard library
only, nothing of hello_tui. Why a process: a pty hands out at most 4 KiB a
read, so a 10 MB ``cat`` is some 2,500 reads, each one a turn of the call's
event loop and a release and re-take of its GIL (measured: 2.8 s of the loop
in a 10 MB flood, single reads stalling it up to 16 ms while aiortc's threads
held the GIL). Here those reads cost the call nothing; the pipe gathers them,
and the call reads it once a frame, up to 256 KiB at a time.

Back-pressure is kept: when the call does not read, the pipe fills, the
write below blocks, this process stops reading the pty, and the program
blocks on its own writes. It exits when the pty is done (the program and
everything holding its terminal gone: EOF or EIO), and when the call's end
of the pipe closes (POLLERR on fd 1, or EPIPE): a call that died does not
leave its shared shell behind, which is hung up as the pty closes.
"""

import os
import select
import signal

READ = 65536


def main() -> int:
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # the call is gone: die quietly
    poll = select.poll()
    poll.register(0, select.POLLIN)
    poll.register(1, 0)  # POLLERR/POLLHUP only: the reader closed the pipe
    while True:
        for fd, event in poll.poll():
            if fd == 1 or not event & select.POLLIN:
                return 0
        try:
            data = os.read(0, READ)
        except BlockingIOError:  # the pty is shared non-blocking with the call (it types)
            continue
        except OSError:  # EIO: the last holder of the pty's slave is gone
            return 0
        if not data:
            return 0
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(1, view) :]
            except BrokenPipeError:
                return 0


if __name__ == "__main__":
    raise SystemExit(main())
