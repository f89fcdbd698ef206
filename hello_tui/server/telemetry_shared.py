"""Telemetry aggregates kept in Redis: every instance counts into one open period.

The privacy rules are those of :mod:`hello_tui.server.telemetry`, over all
instances at once: a reporter is ``HMAC(salt of the period, truncated
network)``, one reporter adds at most ``per_reporter`` reports to a bucket
per period whichever instances its reports reach, and a bucket is published
when its distinct reporters (plus noise) reach the threshold.

Per open period ``I`` (keys share the hash tag ``{tel:I}``: one slot)::

    {p}{tel:I}salt      32 random bytes, made by the first instance to need them
    {p}{tel:I}counts    hash: "group␟name␟label␟reporter" -> reports (≤ per_reporter)
    {p}{tel:I}buckets   set of the period's buckets (at most MAX_BUCKETS)
    {p}{tel:I}users     set of HMAC(salt, daily id)
    {p}{tel:I}users_by  hash: reporter -> new users it brought (≤ per_reporter)
    {p}{tel:I}entries   count of (bucket, reporter) pairs and users (≤ MAX_ENTRIES)
    {p}{tel:I}closed    set by the one instance that publishes the period

Every one of them expires one period after the period's end, so a period
nobody closed (no instance up through the next one) is forgotten unpublished.
The first instance that sees a period over (on a report, ``/stats`` or
``/metrics``) claims ``closed`` and publishes it with noise, once, into
``{p}telemetry:published`` (hash: "group␟name␟label" -> running sum),
``{p}telemetry:daily`` (period label -> users) and ``{p}telemetry:through``;
then the period's keys, its salt with them, are deleted. Published sums are
kept ``DAYS_KEPT`` periods after the last close (every key has a TTL).
"""

from __future__ import annotations

import secrets
from collections import Counter
from typing import TYPE_CHECKING, Any, cast

from hello_tui.server.privacy import log
from hello_tui.server.telemetry import (
    DAYS_KEPT,
    GROUPS,
    MAX_BUCKETS,
    MAX_ENTRIES,
    Key,
    TelemetryAggregator,
    call_keys,
    crash_keys,
    feedback_keys,
    user_keys,
)
from hello_tui.signaling import protocol as p

if TYPE_CHECKING:
    from hello_tui.server.store.redis import RedisStore

SEP = "\x1f"  # no bucket label can hold it (the protocol's patterns and enums)

# KEYS: counts, buckets, users, users_by, entries. ARGV: reporter, per_reporter,
# max buckets, max entries, PXAT ms, user digest ("": none), number of report
# buckets, those buckets, then the new user's buckets.
_ADD = """
local who, per = ARGV[1], tonumber(ARGV[2])
local function count(b)
  if redis.call('SISMEMBER', KEYS[2], b) == 0 then
    if redis.call('SCARD', KEYS[2]) >= tonumber(ARGV[3]) then return end
    redis.call('SADD', KEYS[2], b)
  end
  local field = b .. '\\31' .. who
  local n = tonumber(redis.call('HGET', KEYS[1], field) or '0')
  if n >= per then return end
  if n == 0 then
    if tonumber(redis.call('GET', KEYS[5]) or '0') >= tonumber(ARGV[4]) then return end
    redis.call('INCR', KEYS[5])
  end
  redis.call('HSET', KEYS[1], field, n + 1)
end
local n = tonumber(ARGV[7])
for i = 8, 7 + n do count(ARGV[i]) end
if ARGV[6] ~= '' and redis.call('SISMEMBER', KEYS[3], ARGV[6]) == 0
    and tonumber(redis.call('HGET', KEYS[4], who) or '0') < per
    and tonumber(redis.call('GET', KEYS[5]) or '0') < tonumber(ARGV[4]) then
  redis.call('SADD', KEYS[3], ARGV[6])
  redis.call('HINCRBY', KEYS[4], who, 1)
  redis.call('INCR', KEYS[5])
  for i = 8 + n, #ARGV do count(ARGV[i]) end
end
for i = 1, 5 do redis.call('PEXPIREAT', KEYS[i], ARGV[5]) end
return 1
"""


class SharedTelemetry(TelemetryAggregator):
    """A :class:`TelemetryAggregator` whose open period and sums live in Redis."""

    def __init__(self, store: RedisStore, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.store = store
        self._salts: dict[int, bytes] = {}  # open period -> salt (this one only)
        self._closed_seen: int | None = None  # the last period seen closed from here

    def _rotate(self) -> None:
        """Nothing to rotate in memory: periods close in Redis (:meth:`_close_before`)."""

    def _key(self, index: int, part: str) -> str:
        return self.store.prefix + "{tel:" + str(index) + "}" + part

    def _end_ms(self, index: int) -> int:
        """Period keys live until one period after the period's end."""
        return (index + 2) * self.period * 1000

    async def _salt_of(self, index: int) -> bytes:
        salt = self._salts.get(index)
        if salt is None:
            r, key = self.store.redis, self._key(index, "salt")
            await r.set(key, secrets.token_bytes(32), nx=True, pxat=self._end_ms(index))
            salt = cast("bytes", await r.get(key) or b"")
            self._salts = {index: salt}  # an older period's salt is not kept here
        return salt

    # ------------------------------------------------------------ intake
    async def ingest(
        self, report: p.CallReport | p.FeedbackReport | p.CrashReport, network: str
    ) -> None:
        index = int(self.clock() // self.period)
        await self._close_before(index)
        self._salt = await self._salt_of(index)
        who = self._digest(network).hex()
        user = ""
        extra: list[Key] = []
        if isinstance(report, p.CallReport):
            keys = call_keys(report)
            user = self._digest(report.daily_id or network).hex()
            extra = user_keys(report.os, report.client_version, self._country(network))
        elif isinstance(report, p.FeedbackReport):
            keys = feedback_keys(report)
        else:
            keys = crash_keys(report)
        parts = ("counts", "buckets", "users", "users_by", "entries")
        await self.store.script(
            _ADD, [self._key(index, part) for part in parts],
            who, self.per_reporter, MAX_BUCKETS, MAX_ENTRIES, self._end_ms(index), user,
            len(keys), *(SEP.join(k) for k in keys), *(SEP.join(k) for k in extra),
        )  # fmt: skip

    # ------------------------------------------------------------ closing
    async def _close_before(self, index: int) -> None:
        """Publish the period before ``index`` if no instance has yet."""
        previous = index - 1
        if self._closed_seen is not None and self._closed_seen >= previous:
            return  # this instance saw it closed already
        r = self.store.redis
        claimed = await r.set(self._key(previous, "closed"), b"1", nx=True,
                              pxat=self._end_ms(previous))  # fmt: skip
        self._closed_seen = previous
        if not claimed:
            return
        raw = cast("dict[bytes, bytes]", await r.hgetall(self._key(previous, "counts")))
        reports: Counter[Key] = Counter()
        reporters: Counter[Key] = Counter()
        for field, value in raw.items():
            group, name, label, _ = field.decode().split(SEP)
            reports[(group, name, label)] += int(value)
            reporters[(group, name, label)] += 1
        users = int(await r.scard(self._key(previous, "users")))
        networks = int(await r.hlen(self._key(previous, "users_by")))
        label = self.label(previous)
        added, shown_users = self.publish(label, dict(reports), dict(reporters), users, networks)
        keep = (previous + 1 + DAYS_KEPT) * self.period * 1000
        async with r.pipeline(transaction=True) as pipe:
            for bucket_key, noisy in added.items():
                pipe.hincrby(self._sums("published"), SEP.join(bucket_key), noisy)
            if shown_users:
                pipe.hset(self._sums("daily"), label, shown_users)
            pipe.set(self._sums("through"), label, pxat=keep)
            for part in ("published", "daily"):
                pipe.pexpireat(self._sums(part), keep)
            for part in ("salt", "counts", "buckets", "users", "users_by", "entries"):
                pipe.delete(self._key(previous, part))
            await pipe.execute()
        log.info("telemetry period %s published", label)

    def _sums(self, part: str) -> str:
        return f"{self.store.prefix}telemetry:{part}"

    async def refresh(self) -> None:
        """Close the last period if due, then read the published sums (every
        instance serves the same ``/stats``)."""
        await self._close_before(int(self.clock() // self.period))
        r = self.store.redis
        raw = cast("dict[bytes, bytes]", await r.hgetall(self._sums("published")))
        published: dict[str, dict[str, Counter[str]]] = {
            group: {name: Counter() for name in names} for group, names in GROUPS.items()
        }
        for field, value in raw.items():
            group, name, label = field.decode().split(SEP)
            if group in published and name in published[group]:
                published[group][name][label] = int(value)
        self.published = published
        daily = cast("dict[bytes, bytes]", await r.hgetall(self._sums("daily")))
        kept = sorted((k.decode(), int(v)) for k, v in daily.items())[-DAYS_KEPT:]
        self.daily_users = dict(kept)
        through = await r.get(self._sums("through"))
        self.closed_through = through.decode() if isinstance(through, bytes) else ""
