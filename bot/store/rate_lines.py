"""GCRA turns shared by every bot process through Redis, with an ordered waiting line per key in each.

Both the Refold rate limiter (bot/store/ratelimit.py) and the Slack pacer (bot/store/slack_pacer.py)
stand on this. The budget is pyrate-limiter's GCRA kept in one small Redis hash per key and updated
in Lua, so processes sharing a key never pass the budget together. Within one process a key's callers
queue first come, first served behind an asyncio.Lock, so only the head of the line asks Redis.

Optionally a key can be held ("not before" an instant, in Redis, for every process) when the remote
API said so itself, say with Retry-After.

Redis being down must not stop the bot: a turn is then granted at once, and one WARNING says so per
outage (not per call, which under load would flood the log), and one INFO line when Redis is back.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import redis.asyncio as aioredis
from cachetools import LRUCache
from pyrate_limiter import GCRA, Rate
from pyrate_limiter.buckets.redis_state import RedisStateStore
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

# Keeps the later of two holds: a short Retry-After arriving after a long one must not shorten it.
# KEYS[1] hold key; ARGV[1] not-before (epoch ms); ARGV[2] lifetime (ms).
_HOLD_LUA = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > current then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
return 1
"""

# A store is only a key name and a cached script, so forgetting them all now and then costs one
# script registration each; the bound keeps a process that meets many keys from growing without end.
_MAX_STORES = 10_000


class TurnTooLate(Exception):
    """The wait for a turn would pass the caller's deadline."""


@dataclass(frozen=True)
class TurnRequest:
    """A turn to be asked for inside another script's round trip: the limiter's own Lua (its
    KEYS[1] the state, ARGV as pyrate-limiter's RedisStateStore passes them) and its arguments."""

    key: str
    lua: str
    args: list[int | float]


@dataclass
class _Line:
    """One key's callers waiting in this process. asyncio.Lock wakes its waiters first come, first
    served, so only the head of the line asks Redis for a turn."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    issued: int = 0  # tickets handed out
    served: int = 0  # callers that left the line (granted, refused or cancelled)


async def _enter(lock: asyncio.Lock, deadline: float | None) -> None:
    """Take the line's lock, or raise TurnTooLate once `deadline` passes: the callers ahead may wait
    far longer than their number suggests (other processes take turns from the same budget)."""
    if deadline is None:
        await lock.acquire()
        return
    try:
        # A cancelled acquire leaves the lock to the next in line (asyncio.Lock's own guarantee), and
        # one that got the lock as the time ran out returns it rather than raising.
        await asyncio.wait_for(lock.acquire(), max(0.0, deadline - time.monotonic()))
    except TimeoutError:
        raise TurnTooLate from None


class RedisRateLine:
    """Turns under string keys; `state_key` and `hold_key` name their Redis keys (never a secret).

    Lines live only while someone waits in them, so the line table is bounded by the callers waiting.
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        state_key: Callable[[str], str],
        *,
        hold_key: Callable[[str], str] | None = None,
        name: str = "rate limiter",
    ) -> None:
        self._redis = redis
        self._state_key = state_key
        self._hold_key = hold_key
        self._name = name
        self._algorithm = GCRA()
        self._stores: LRUCache[str, RedisStateStore] = LRUCache(maxsize=_MAX_STORES)
        self._lines: dict[str, _Line] = {}
        self._hold_script: AsyncScript | None = None
        self._down = False

    def waiting(self, key: str) -> int:
        """How many callers under `key` wait in this process's line (the head included)."""
        line = self._lines.get(key)
        return line.issued - line.served if line else 0

    async def take(
        self,
        key: str,
        rates: Sequence[Rate],
        *,
        deadline: float | None = None,
        ahead: Callable[[Callable[[], int] | None], None] | None = None,
    ) -> float:
        """Wait in `key`'s line, then for a turn; return when it was granted (time.monotonic()).

        `ahead`, when given, is told how to count the callers before this one while it waits, 0 once
        it heads the line, and None when it leaves. Raise TurnTooLate past `deadline` (monotonic),
        whether still in the line or waiting for the turn.
        """
        line = self._lines.setdefault(key, _Line())
        line.issued += 1
        ticket = line.issued
        if ahead is not None:
            ahead(lambda: max(0, ticket - line.served - 1))
        try:
            await _enter(line.lock, deadline)
            try:
                if ahead is not None:
                    ahead(lambda: 0)
                return await self.turn(key, rates, deadline=deadline)
            finally:
                line.lock.release()
        finally:
            line.served += 1
            if ahead is not None:
                ahead(None)
            if line.served == line.issued and self._lines.get(key) is line:
                del self._lines[key]

    def request(self, key: str, rates: Sequence[Rate]) -> TurnRequest | None:
        """A turn under `key` for another script to take, or None when it must be waited for here:
        someone waits in this process's line (they come first), a hold may apply, or Redis is down."""
        lua = self._algorithm.redis_script()
        if self.waiting(key) or self._hold_key is not None or self._down or lua is None:
            return None
        # RedisStateStore.check's layout: now, weight, the state's lifetime (until the bucket has
        # drained, doubled), the number of rates, then the algorithm's own arguments.
        ttl_ms = max(math.ceil(2 * rate.burst * rate.interval / rate.limit) for rate in rates)
        args = [_now_ms(), 1, ttl_ms, len(rates), *self._algorithm.redis_args(list(rates))]
        return TurnRequest(self._state_key(key), lua, args)

    async def turn(self, key: str, rates: Sequence[Rate], *, deadline: float | None = None) -> float:
        """A turn under `key` without queueing (for a caller already at the head of its line)."""
        store = self._store(key)
        while True:
            decision = None
            try:
                pause = await self._held_for(key)
                if pause <= 0:
                    asked = time.monotonic()
                    decision = await store.check(self._algorithm, list(rates), _now_ms(), 1)
            except (RedisError, OSError) as exc:
                self._outage(exc)
                return time.monotonic()
            self._recovered()
            if decision is not None:
                if decision.allowed:
                    return asked
                pause = max(decision.retry_after_ms or 50, 1) / 1000
            if deadline is not None and time.monotonic() + pause > deadline:
                raise TurnTooLate
            await asyncio.sleep(pause)

    async def hold(self, key: str, seconds: float) -> None:
        """Grant no turn under `key`, in any process, for `seconds` from now (a longer hold stays)."""
        if self._hold_key is None:
            raise TypeError("this line was built without hold_key")
        if seconds <= 0:
            return
        until_ms = math.ceil((time.time() + seconds) * 1000)
        if self._hold_script is None:
            self._hold_script = self._redis.register_script(_HOLD_LUA)
        try:
            # The key outlives the hold a little so a clock a few ms behind still sees it.
            await self._hold_script(
                keys=[self._hold_key(key)], args=[until_ms, math.ceil(seconds * 1000) + 1000]
            )
        except (RedisError, OSError) as exc:
            self._outage(exc)
            return
        self._recovered()

    async def estimate(self, key: str, rates: Sequence[Rate]) -> float:
        """Seconds until a new caller under `key` would be granted its turn, counting this process's
        line, the hold and the budget others spent; not the lines of other processes. 0 when Redis is
        down (turns are then granted at once)."""
        try:
            held = await self._held_for(key)
            state = await self._store(key).read(self._algorithm, list(rates))
        except (RedisError, OSError) as exc:
            self._outage(exc)
            return 0.0
        self._recovered()
        now_us = _now_ms() * 1000
        units = self.waiting(key) + 1
        wait_us = 0
        for rate, tat in zip(rates, state, strict=True):
            # GCRA: the n-th next caller is due once the theoretical arrival time, pushed n emissions
            # on, is within the burst of now.
            emission = max(1, math.ceil(rate.interval * 1000 / rate.limit))
            due = max(int(tat), now_us) + units * emission - rate.burst * emission
            wait_us = max(wait_us, due - now_us)
        return max(held, wait_us / 1_000_000, 0.0)

    async def _held_for(self, key: str) -> float:
        if self._hold_key is None:
            return 0.0
        raw = await self._redis.get(self._hold_key(key))
        return (int(raw) / 1000 - time.time()) if raw else 0.0

    def _store(self, key: str) -> RedisStateStore:
        store = self._stores.get(key)
        if store is None:
            store = self._stores[key] = RedisStateStore(self._redis, self._state_key(key))
        return store

    def _outage(self, exc: BaseException) -> None:
        if not self._down:
            self._down = True
            # The exception's type only: redis-py's message can quote the URL, password included.
            log.warning("%s unavailable (%s); sending without it", self._name, type(exc).__name__)

    def _recovered(self) -> None:
        if self._down:
            self._down = False
            log.info("%s available again", self._name)


def _now_ms() -> int:
    # Wall clock, not monotonic: the state is shared between machines.
    return int(time.time() * 1000)
