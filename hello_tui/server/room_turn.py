"""TURN credentials for a room's visitors, anonymous ones included (``room-turn``),
and fresh ones for an account's direct call (``call-turn``, :meth:`RoomTurnService.issue_call`).

A conversation URL is meant to work for anyone, so its holder must be able to
cross NATs like an account can; but a link must not become a tap on relay
bandwidth. So room credentials are:

- **tied to a live room**: only for a token that names a room which has not
  expired and has a free seat (or where the asker already sits);
- **short-lived**: ``room_turn_ttl`` (1 hour by default). coturn re-checks the
  expiry on every allocation refresh, so this also bounds how long a relayed
  call can last: aiortc cannot swap credentials mid-call, hence not minutes;
- **rate-limited** per room (``room_turn_per_room`` per window: a call needs
  two, a few rejoins some more) and per client network
  (``room_turn_per_network``), like the other quotas: in Redis for every
  instance where the secret is shared (:mod:`hello_tui.server.quotas`);
- **anonymous** like the account ones (:mod:`hello_tui.server.turn`): the
  username names neither the room nor the session.

The operator can bound each credential's use on the TURN side as well
(coturn ``user-quota``: allocations at once per username; ``max-bps``),
which docs/server.md recommends.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING

from hello_tui.server.errors import Refusal
from hello_tui.server.privacy import log, short
from hello_tui.server.quotas import refuse
from hello_tui.server.turn import turn_credentials
from hello_tui.signaling.protocol import CallTurn, RoomIce, RoomTurn

if TYPE_CHECKING:
    from hello_tui.server.hub import Hub
    from hello_tui.server.session import Session


class RoomTurnService:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        settings = hub.settings
        window = hub.quotas.make_window  # shared across instances where quotas are
        self.per_room = window(settings.room_turn_per_room, "turn-room")
        self.per_network = window(settings.room_turn_per_network, "turn")
        self.per_account = window(settings.call_turn_per_account, "turn-account")

    def prune(self) -> None:
        """Drop emptied windows (the hub's upkeep)."""
        self.per_room.prune()
        self.per_network.prune()
        self.per_account.prune()

    async def issue(self, session: Session, msg: RoomTurn) -> None:
        hub = self.hub
        settings = hub.settings
        if not settings.turn_secret or not settings.turn_urls:
            session.push(RoomIce(ref=msg.ref))  # no TURN here: nothing to ration
            return
        room = await hub.store.get_room(msg.token)
        if room is None or not hmac.compare_digest(room.token, msg.token):
            raise Refusal("unknown-room", "no such room")
        now = hub.store.clock()
        if now >= room.expires:
            raise Refusal("room-expired", "this room has expired")
        if len(room.participants) >= 2 and session.id not in room.participants:
            raise Refusal("room-full", "this room already has two participants")
        if not await self.per_network.take(session.network):
            raise refuse("relay requests")
        if not await self.per_room.take(room.token):
            await self.per_network.give_back(session.network)
            raise Refusal("quota-exceeded", "too many relay requests for this room; try later")
        ice = turn_credentials(settings.turn_secret, settings.turn_urls, now,
                               settings.room_turn_ttl)  # fmt: skip
        log.info("room %s turn credentials session=%s", short(room.token), short(session.id))
        session.push(RoomIce(ice=ice, ref=msg.ref))

    async def issue_call(self, session: Session, msg: CallTurn) -> None:
        """Fresh account credentials for a direct call (``call-turn``): the login's
        may be hours old, and a relay allocated on them would fail its refresh."""
        settings = self.hub.settings
        if session.account_key is None:
            raise Refusal("auth-required", "log in first")
        if not settings.turn_secret or not settings.turn_urls:
            session.push(RoomIce(ref=msg.ref))
            return
        if not await self.per_account.take(session.account_key):
            raise Refusal("quota-exceeded", "too many relay requests for this account; try later")
        ice = turn_credentials(settings.turn_secret, settings.turn_urls, self.hub.store.clock(),
                               settings.turn_ttl)  # fmt: skip
        session.push(RoomIce(ice=ice, ref=msg.ref))
