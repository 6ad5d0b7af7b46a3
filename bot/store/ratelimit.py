"""Refold's rate limit (20 requests/s per key, burst 5), kept across every bot process via Redis.

GCRA from pyrate-limiter, stored as one small Redis hash per key and updated atomically in Lua, so
two processes sharing a key never exceed the limit together. A request beyond the budget waits its
turn: each process serves a key's waiting requests in the order they came (a burst from one
workspace is answered in order, not refused), and only a request whose wait would pass a minute is
refused with a polite "Refold is busy". Redis being down must not stop lookups, so the limiter then
lets requests through and says so in the log, once per outage. The line and the turns themselves are
bot/store/rate_lines.py's, which the Slack pacer shares.
"""

from __future__ import annotations

import time

import redis.asyncio as aioredis
from pyrate_limiter import Duration, Rate

from bot.refold.errors import RefoldBusy
from bot.refold.place import current_place
from bot.store import keys
from bot.store.rate_lines import RedisRateLine, TurnRequest, TurnTooLate

# Refold allows 20/s with a burst of 5, token-bucket style. Requests are admitted here but counted
# there, after a hop whose delay varies with load (measured: up to ~0.2 s on a busy 2-core host, which
# bunched 18 admissions into 21 arrivals). A bucket refilling at 12/s with room for 3 admits at most
# 15 in any second and 3 at once, leaving that jitter room below Refold's limit.
REFOLD_RATES = [Rate(12, Duration.SECOND, burst=3)]


# Slack's response_url lasts 30 minutes, so a person can be kept waiting; past a minute, "try again
# later" is the more useful answer.
MAX_WAIT_SECONDS = 60.0


class RefoldRateLimiter:
    def __init__(
        self,
        redis: aioredis.Redis,
        rates: list[Rate] | None = None,
        max_wait_seconds: float = MAX_WAIT_SECONDS,
    ) -> None:
        self._rates = rates or REFOLD_RATES
        self._max_wait = max_wait_seconds
        self._line = RedisRateLine(redis, keys.rate_limit, name="rate limiter")
        # The slowest refill: how fast a line moves once the burst is spent.
        self._per_second = min(rate.limit * 1000 / rate.interval for rate in self._rates)

    def waiting(self, key: str) -> int:
        """How many requests under `key` wait in this process's line."""
        return self._line.waiting(key)

    def offer(self, key: str) -> TurnRequest | None:
        """A turn under `key` to be taken in the same round trip as the lookup's cache read and lease
        (bot/store/executions.py); None when it must be waited for in line (`acquire`). A turn taken
        that way is handed to the Refold client (`admitted_at`), which then asks for none."""
        return self._line.request(key, self._rates)

    async def acquire(self, key: str, *, again: bool = False) -> float:
        """Wait for a turn under `key`, behind this process's earlier requests for it; return when the
        turn was granted (time.monotonic()).

        Raise RefoldBusy when the wait would pass the limit. The caller sends at once, or asks again
        with `again` if it could not (see the Refold client): a turn is counted when it is granted,
        not when it is used, and a request asking again keeps its place at the head of the line.
        """
        deadline = time.monotonic() + self._max_wait
        place = current_place()
        # Each request ahead takes 1/rate of a second once the burst is spent: a wait that can only
        # pass the limit is refused now, not after a minute.
        if not again and self._line.waiting(key) / self._per_second > self._max_wait:
            raise RefoldBusy("Refold is busy: this workspace has more than a minute of requests queued")
        try:
            if again:
                granted = await self._line.turn(key, self._rates, deadline=deadline)
            else:
                ahead = place.waiting if place is not None else None
                granted = await self._line.take(key, self._rates, deadline=deadline, ahead=ahead)
        except TurnTooLate:
            raise RefoldBusy("Refold is busy: this workspace is at Refold's rate limit") from None
        if place is not None:
            place.granted()
        return granted
