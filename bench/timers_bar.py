"""The timers bar of issue 18: ringing calls across instances, one instance killed,
every call ends exactly once with the right reason.

Three real ``hello-tui serve`` processes on one real redis-server; callers and
callees spread over all three (a caller's callees on the other instances).
Each caller places ``--per-caller`` calls at once; a call placed with
``video`` set is never answered with ``ringing`` (it must end
``setup-timeout``), the others ring (they must end ``timeout``). Once every
call is placed, instance 1 is killed with SIGKILL. Then every party on the
surviving instances must hear each of its calls end exactly once, with the
right reason, and Redis must hold no call record or timer entry.

Run: ``.venv/bin/python bench/timers_bar.py [--calls 1000] [--timeout 30]``.
Prints the counts; exits 1 if the bar is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hello_tui.signaling import protocol as p  # noqa: E402
from tests.server.conftest import Client, b64, sdp  # noqa: E402
from tests.server.instances import Fleet  # noqa: E402
from tests.services.redis import redis_server  # noqa: E402

INSTANCES = 3
SETUP_TIMEOUT = 60.0
KILLED = 1


@dataclass
class Party:
    client: Client
    instance: int
    callee: bool
    ended: list[tuple[str, str]] = field(default_factory=list)  # (call id, reason)
    created: dict[int, str] = field(default_factory=dict)  # ref -> call id
    rang: set[str] = field(default_factory=set)  # calls whose callee said "ringing"
    other: int = 0  # messages that are neither expected nor harmless


async def read(party: Party) -> None:
    """Everything a party hears; a callee rings for calls without video."""
    client = party.client
    with contextlib.suppress(Exception):
        while True:
            message = await client.recv(timeout=3600)
            match message:
                case p.Incoming() if party.callee:
                    if not message.video:
                        await client.send(p.Ringing(call_id=message.call_id))
                case p.CallCreated() if message.ref is not None:
                    party.created[message.ref] = message.call_id
                case p.CallEnded():
                    party.ended.append((message.call_id, message.reason))
                case p.Ringing():
                    party.rang.add(message.call_id)
                case p.Ok():
                    pass
                case _:
                    party.other += 1


async def run(calls: int, per_caller: int, timeout: float) -> int:
    n = calls // per_caller
    with redis_server() as redis, tempfile.TemporaryDirectory(prefix="hello-timers-") as tmp:
        # No cap on held connections (aiohttp's default is 100).
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            fleet = Fleet(Path(tmp), redis.url, http)
            try:
                flags = ("--ring-timeout", f"{timeout:g}", "--supervisory-timeout", f"{timeout:g}",
                         "--max-connections", "0")  # fmt: skip
                instances = [await fleet.start(*flags) for _ in range(INSTANCES)]
                t0 = time.monotonic()
                sem = asyncio.Semaphore(20)

                async def party(i: int, callee: bool) -> Party:
                    where = (i + 1) % INSTANCES if callee else i % INSTANCES
                    name = f"{'callee' if callee else 'caller'}{i}@bench.example"
                    async with sem:
                        client = await signed_in(http, instances[where].url, name)
                        fleet.clients.append(client)
                        return Party(client, where, callee)

                callers = list(await asyncio.gather(*(party(i, False) for i in range(n))))
                callees = list(await asyncio.gather(*(party(i, True) for i in range(n))))
                print(f"{2 * n} parties logged in over {INSTANCES} instances "
                      f"in {time.monotonic() - t0:.1f} s")  # fmt: skip
                readers = [asyncio.create_task(read(x)) for x in callers + callees]
                expected: dict[str, tuple[str, int, int]] = {}  # call -> (reason, caller, callee)
                t0 = time.monotonic()
                for i, caller in enumerate(callers):
                    for k in range(per_caller):
                        video = k % 3 == 2  # one in three never rings
                        to = f"callee{(i + k) % n}@bench.example"
                        await caller.client.send(p.Call(to=to, offer=sdp(), video=video, ref=k + 1))
                while sum(len(c.created) for c in callers) < n * per_caller:
                    if time.monotonic() - t0 > timeout:
                        break
                    await asyncio.sleep(0.05)
                for i, caller in enumerate(callers):
                    for ref, call_id in caller.created.items():
                        k = ref - 1
                        reason = "setup-timeout" if k % 3 == 2 else "timeout"
                        expected[call_id] = (reason, i, (i + k) % n)
                # Every call that is to ring has rung before the kill (else a callee
                # on the killed instance may not have said so: setup-timeout).
                ringing = {c for c, (reason, _, _) in expected.items() if reason == "timeout"}
                while time.monotonic() - t0 < timeout:
                    if ringing <= set().union(*(c.rang for c in callers)):
                        break
                    await asyncio.sleep(0.05)
                placed = time.monotonic() - t0
                early = sum(len(x.ended) for x in callers + callees)
                print(f"{len(expected)}/{n * per_caller} calls placed in {placed:.1f} s "
                      f"({early} endings heard before the kill)")  # fmt: skip
                await instances[KILLED].kill()
                killed_at = time.monotonic()
                alive = [x for x in callers + callees if x.instance != KILLED]

                def want(x: Party) -> Counter[tuple[str, str]]:
                    out: Counter[tuple[str, str]] = Counter()
                    for call_id, (reason, i, j) in expected.items():
                        if x is callers[i] or x is callees[j]:
                            out[(call_id, reason)] += 1
                    return out

                wants = {id(x): want(x) for x in alive}
                deadline = killed_at + timeout + 60
                while time.monotonic() < deadline and any(
                    Counter(x.ended) != wants[id(x)] for x in alive
                ):
                    await asyncio.sleep(0.2)
                last = time.monotonic() - killed_at
                await asyncio.sleep(2.0)  # a second ending would arrive in this time
                for task in readers:
                    task.cancel()
                right = twice = wrong = missing = 0
                for x in alive:
                    got, need = Counter(x.ended), wants[id(x)]
                    ids = Counter(call_id for call_id, _ in x.ended)
                    twice += sum(1 for c in ids.values() if c > 1)
                    for (call_id, reason), _ in need.items():
                        if ids[call_id] == 0:
                            missing += 1
                        elif got[(call_id, reason)] == 1 and ids[call_id] == 1:
                            right += 1
                        elif ids[call_id] == 1:
                            wrong += 1
                shown = 0
                for x in alive:
                    ids = Counter(call_id for call_id, _ in x.ended)
                    for (call_id, reason), _ in wants[id(x)].items():
                        if shown < 8 and (ids[call_id] != 1 or (call_id, reason) not in x.ended):
                            shown += 1
                            _, i, j = expected[call_id]
                            heard = [r for c, r in x.ended if c == call_id]
                            print(f"  {'callee' if x.callee else 'caller'} on instance "
                                  f"{x.instance}: call {call_id[:6]} (caller on "
                                  f"{callers[i].instance}, callee on {callees[j].instance}) "
                                  f"want {reason}, heard {heard}")  # fmt: skip
                expected_endings = sum(sum(w.values()) for w in wants.values())
                others = sum(x.other for x in alive)
                left = await _call_keys(redis.url)
                print(f"instance {KILLED} killed; surviving parties heard {right}/"
                      f"{expected_endings} endings exactly once with the right reason "
                      f"(wrong reason {wrong}, twice {twice}, missing {missing}, "
                      f"other messages {others}); last ending {last:.1f} s after the kill "
                      f"(timers {timeout:g} s); call keys left in Redis: {len(left)}")  # fmt: skip
                ok = (
                    len(expected) == n * per_caller
                    and right == expected_endings
                    and not (wrong or twice or missing or others or left)
                )
                print("PASS" if ok else "FAIL")
                return 0 if ok else 1
            finally:
                await fleet.stop()


async def signed_in(http: aiohttp.ClientSession, url: str, name: str) -> Client:
    """hello, register and log in, with timeouts a loaded machine can meet."""
    client = Client(await http.ws_connect(url + "/ws"))
    await client.send(p.Hello(version=1, client="bench"))
    client.session = (await client.expect(p.Welcome, timeout=SETUP_TIMEOUT)).session
    ref = client.next_ref()
    await client.send(p.Register(name=name, public_key=client.public_key, ref=ref))
    await client.expect(p.Ok, timeout=SETUP_TIMEOUT, ref=ref)
    await client.send(p.Login(name=name, ref=client.next_ref()))
    challenge = await client.expect(p.Challenge, timeout=SETUP_TIMEOUT)
    signature = client.key.sign(p.login_payload(challenge.nonce, client.session, client.origin))
    proof = p.LoginProof(signature=b64(signature), origin=client.origin, ref=client.next_ref())
    await client.send(proof)
    await client.expect(p.LoggedIn, timeout=SETUP_TIMEOUT)
    client.name = name
    return client


async def _call_keys(url: str) -> list[str]:
    import redis.asyncio as aioredis

    r = aioredis.Redis.from_url(url)
    try:
        keys = [k.decode() async for k in r.scan_iter(match="hello:call:*")]
        return keys + [f"timer {m!r}" for m in await r.zrange("hello:timers", 0, -1)]
    finally:
        await r.aclose()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=1000, help="ringing calls in all (1000)")
    ap.add_argument("--per-caller", type=int, default=4, help="calls each caller places (4)")
    ap.add_argument("--timeout", type=float, default=30.0, help="ring/supervisory timeout (30)")
    args = ap.parse_args(argv)
    return asyncio.run(run(args.calls, args.per_caller, args.timeout))


if __name__ == "__main__":
    sys.exit(main())
