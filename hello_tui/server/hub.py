"""The hub of one server instance: settings, store, live sessions, services.

It is the only object handlers share. It also runs the upkeep loop (expired
records out, live sessions' records refreshed) and the graceful shutdown
(``reconnect`` to every client, then close).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import secrets
from collections import Counter
from collections.abc import Coroutine
from typing import Any

from aiohttp import WSCloseCode

from hello_tui.server.accounts import Accounts
from hello_tui.server.calls import Calls
from hello_tui.server.devices import DeviceService
from hello_tui.server.invites import InviteBook
from hello_tui.server.metrics import Metrics
from hello_tui.server.privacy import log
from hello_tui.server.quotas import Quotas, refuse
from hello_tui.server.reaper import Reaper
from hello_tui.server.room_turn import RoomTurnService
from hello_tui.server.rooms import RoomService
from hello_tui.server.session import Handler, Session
from hello_tui.server.settings import ServerSettings
from hello_tui.server.store import MemoryStore, Store
from hello_tui.signaling import protocol as p


class Hub:
    """Everything one instance holds in memory, and its dispatch table."""

    def __init__(self, settings: ServerSettings, store: Store | None = None) -> None:
        self.settings = settings
        self.store: Store = store if store is not None else MemoryStore()
        self.instance = secrets.token_urlsafe(12)
        self.metrics = Metrics()
        self.invites = InviteBook(settings.invites_file)
        self.sessions: dict[str, Session] = {}
        self.quotas = Quotas(settings, self.store.clock, self.store)
        # Open WebSockets per client network (keyed hash: Quotas.network), and
        # every connection past the global-cap check (upgrading or open).
        self.connections_by_network: Counter[str] = Counter()
        self.connections = 0
        self.accounts = Accounts(self)
        self.calls = Calls(self)
        self.rooms = RoomService(self)
        self.room_turn = RoomTurnService(self)
        self.devices = DeviceService(self)
        self.reaper = Reaper(self)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._upkeep: asyncio.Task[None] | None = None
        self._timers: asyncio.Task[None] | None = None
        self._beats: asyncio.Task[None] | None = None
        self.handlers: dict[type[p.Message], Handler] = {
            p.Register: self._register,
            p.Login: self.accounts.login,
            p.LoginProof: self.accounts.login_proof,
            p.Logout: self.accounts.logout,
            p.AccountDelete: self.accounts.delete,
            p.Call: self.calls.place,
            p.Ringing: self.calls.ringing,
            p.Accept: self.calls.accept,
            p.Reject: self.calls.reject,
            p.Offer: self.calls.relay,
            p.Answer: self.calls.relay,
            p.SasReveal: self.calls.relay,
            p.Connected: self.calls.connected,
            p.Hangup: self.calls.hangup,
            p.RoomCreate: self.rooms.create,
            p.RoomList: self.rooms.list,
            p.RoomRename: self.rooms.rename,
            p.RoomDelete: self.rooms.delete,
            p.RoomJoin: self.rooms.join,
            p.RoomLeave: self.rooms.leave_request,
            p.RoomTurn: self.room_turn.issue,
            p.CallTurn: self.room_turn.issue_call,
            p.RoomAdmit: self.rooms.admit,
            p.RoomDecline: self.rooms.decline,
            p.DeviceLink: self.devices.link,
            p.DeviceLinkGet: self.devices.link_get,
            p.DeviceApprove: self.devices.approve,
            p.DeviceList: self.devices.list,
            p.DeviceRevoke: self.devices.revoke,
            p.DeviceBoxKey: self.devices.box_key,
            p.RoomKeyAdd: self.rooms.key_add,
            p.RenewOffer: self.calls.renew,
            p.RenewAnswer: self.calls.renew,
        }

    async def _register(self, session: Session, msg: p.Register) -> None:
        """``accounts.register`` under the per-network registration quota: a slot is
        taken first (so concurrent attempts cannot overshoot) and given back if
        the registration is refused for any other reason."""
        window = self.quotas.registrations
        if not await window.take(session.network):
            raise refuse("registrations")
        try:
            await self.accounts.register(session, msg)
        except BaseException:
            await window.give_back(session.network)
            raise

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run ``coro`` in the background, keeping a reference until it is done."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task failed: %r", type(task.exception()).__name__)

    def _on_delivery(self, session_id: str, message: p.Message) -> None:
        session = self.sessions.get(session_id)
        if session is not None:
            session.push(message)

    def _on_frame(self, session_id: str, frame: bytes) -> bool:
        session = self.sessions.get(session_id)
        return session is None or session.push_frame(frame)

    # ---------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        self.store.subscribe(self.instance, self._on_delivery)
        self.store.take_frames(self.instance, self._on_frame)
        loop = asyncio.get_running_loop()
        self._upkeep = loop.create_task(self._upkeep_loop())
        if self.store.shared_timers:
            self._timers = loop.create_task(self.calls.poll_timers())
            self._beats = loop.create_task(self.reaper.run())

    async def _upkeep_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.sweep_interval)
            try:
                await self.store.sweep()
                self.quotas.prune()
                self.room_turn.prune()
                self.devices.prune()
                until = self.store.clock() + self.settings.presence_ttl
                for session in list(self.sessions.values()):
                    if session.state != "open":
                        continue
                    await self.store.register_session(session.id, self.instance, until)
                    if session.account_key is not None:
                        await self.store.touch_presence(session.account_key, session.id, until)
            except Exception as exc:
                if not self.store.unavailable(exc):  # an outage is logged once, by the store
                    log.exception("upkeep failed")

    async def shutdown(self) -> None:
        """Tell every client to reconnect (jittered, so they do not stampede), then close."""
        log.info("shutting down: %d sessions told to reconnect", len(self.sessions))
        for session in list(self.sessions.values()):
            session.push(p.Reconnect(after_ms=random.randint(500, 3000)))
            session.close(WSCloseCode.SERVICE_RESTART)

    async def close(self) -> None:
        for task in (self._upkeep, self._timers, self._beats):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self.calls.cancel_all()
        self.rooms.cancel_all()
        for task in list(self._tasks):
            task.cancel()
        self.store.unsubscribe(self.instance)
        await self.store.close()
