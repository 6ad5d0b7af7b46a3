"""Fetched executions shared between lookups and processes: an encrypted cache and a fetch lease.

A "flight" names one (credentials, linked account, execution) triple by fingerprints, never secrets.
Finished executions are cached for the configured TTL, running ones for 2 s, so Refresh stays fresh.
Both degrade to "no cache, no lease" when Redis fails: lookups then go straight to Refold.

A fresh lookup costs one round trip before its Refold call (`ExecutionCache.start`: the cache read,
else the lease, and for the lease's holder its rate-limit turn, in one script) and one after (the
cache write and the lease's release, queued with the lookup's other writes in one pipeline).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from bot.refold.models import Execution
from bot.store import keys
from bot.store.crypto import Cipher, InvalidToken
from bot.store.rate_lines import TurnRequest
from bot.store.redis import redis_errors

RUNNING_CACHE_SECONDS = 2
# A Refold call usually takes ~100 ms. A lease outliving a crashed holder delays the others this long
# before they fetch themselves (a killed worker's job, retried elsewhere, waits it out); a fetch slower
# than this lets another process fetch too, which costs one extra call and nothing else.
LEASE_SECONDS = 5

# Only the holder's own token may give the lease back or keep it longer.
# KEYS[1] lease; ARGV[1] token; ARGV[2] lifetime (ms), for the extension.
_RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_EXTEND_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""

# Everything a lookup asks Redis before its Refold call, in one round trip: the cached execution;
# else the lease (when it is free); and, for the lease's new holder, a rate-limit turn, taken by the
# limiter's own script (wrapped as a function) so the budget is the one every other turn spends.
# KEYS[1] cache, KEYS[2] lease, KEYS[3] rate-limit state; ARGV[1] "1": skip the cache, ARGV[2] lease
# token, ARGV[3] lease lifetime (ms), ARGV[4] "1": take a turn, ARGV[5…] the limiter's arguments.
# Returns {1, cached} | {2} (leased elsewhere) | {3, failing rate index, retry ms} (leased here; the
# index is negative when the turn was granted) | {3} (leased here, no turn asked).
_START_LUA = """
local function turn(KEYS, ARGV)
%s
end
if ARGV[1] ~= '1' then
  local cached = redis.call('GET', KEYS[1])
  if cached then return {1, cached} end
end
if not redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PX', ARGV[3]) then return {2} end
if ARGV[4] == '1' then
  local decision = turn({KEYS[3]}, {unpack(ARGV, 5)})
  return {3, decision[1], decision[2]}
end
return {3}
"""
_NO_TURN_LUA = "return {-1, 0}"


@dataclass(frozen=True)
class FlightStart:
    """What one round trip found: the cached execution, or whether this process holds the lease,
    and when (time.monotonic()) its rate-limit turn was granted, if one was asked for and given."""

    cached: Execution | None = None
    leader: bool = False
    turn_granted_at: float | None = None


def flight_key(fingerprint: str, account: str | None, execution_id: str) -> str:
    account_hash = hashlib.sha256((account or "").encode()).hexdigest()[:16]
    return f"{fingerprint}:{account_hash}:{execution_id}"


class ExecutionCache:
    def __init__(self, redis: aioredis.Redis, cipher: Cipher, terminal_seconds: int = 600) -> None:
        self._redis = redis
        self._cipher = cipher
        self._terminal_ttl = terminal_seconds
        self._start_scripts: dict[str, AsyncScript] = {}

    async def start(
        self, flight: str, lease: FetchLease, *, fresh: bool = False, turn: TurnRequest | None = None
    ) -> FlightStart:
        """The cached execution (unless `fresh`); else the lease if it is free, and with it `turn`.

        An unreadable cache entry counts as none: the lease is then taken in a second round trip.
        Raises StoreUnavailable when Redis cannot say.
        """
        script = self._start_script(turn.lua if turn else _NO_TURN_LUA)
        rate_key = turn.key if turn else lease.key
        args = ["1" if fresh else "0", lease.token, LEASE_SECONDS * 1000, "1" if turn else "0"]
        async with redis_errors():
            asked = time.monotonic()
            reply = await script(
                keys=[keys.execution_cache(flight), lease.key, rate_key],
                args=[*args, *(turn.args if turn else [])],
            )
            if int(reply[0]) == 1:
                cached = self._read(reply[1])
                if cached is not None:
                    return FlightStart(cached=cached)
                # Written under a key this process cannot read (rotated away): fetch, and overwrite it.
                asked = time.monotonic()
                reply = await script(
                    keys=[keys.execution_cache(flight), lease.key, rate_key],
                    args=["1", *args[1:], *(turn.args if turn else [])],
                )
        if int(reply[0]) == 2:
            return FlightStart()
        granted = len(reply) > 1 and int(reply[1]) < 0
        return FlightStart(leader=True, turn_granted_at=asked if granted else None)

    def put_in(self, pipe: Pipeline, flight: str, execution: Execution) -> None:
        """Queue the cache write on `pipe` (the lookup's one round trip after its answer)."""
        ttl = self._terminal_ttl if execution.is_terminal else RUNNING_CACHE_SECONDS
        if ttl > 0:
            token = self._cipher.encrypt(execution.model_dump_json().encode())
            pipe.set(keys.execution_cache(flight), token, ex=ttl)

    def _read(self, token: bytes | str | None) -> Execution | None:
        if token is None:
            return None
        try:
            return Execution.model_validate_json(self._cipher.decrypt(token))
        except (InvalidToken, ValueError):
            return None

    def _start_script(self, turn_lua: str) -> AsyncScript:
        script = self._start_scripts.get(turn_lua)
        if script is None:
            script = self._start_scripts[turn_lua] = self._redis.register_script(_START_LUA % turn_lua)
        return script


class FetchLease:
    """One process at a time fetches a flight; the others wait for its cached result.

    The lease is a key holding its holder's random token, so only the holder gives it back."""

    def __init__(self, redis: aioredis.Redis, flight: str) -> None:
        self._redis = redis
        self.key = keys.fetch_lease(flight)
        self.token = uuid.uuid4().hex

    async def acquire(self) -> bool:
        """True: this process fetches. Raises StoreUnavailable when Redis cannot say."""
        async with redis_errors():
            return bool(await self._redis.set(self.key, self.token, nx=True, px=LEASE_SECONDS * 1000))

    @contextlib.asynccontextmanager
    async def kept(self) -> AsyncIterator[None]:
        """Hold the lease past its LEASE_SECONDS while the fetch lasts: the holder may wait its turn
        at the Refold rate limit for up to a minute. Should the holder die, the lease lapses as before."""

        async def keep() -> None:
            while True:
                await asyncio.sleep(LEASE_SECONDS / 3)
                with contextlib.suppress(RedisError, OSError):
                    await self._redis.eval(_EXTEND_LUA, 1, self.key, self.token, LEASE_SECONDS * 1000)

        keeping = asyncio.create_task(keep())
        try:
            yield
        finally:
            keeping.cancel()

    def release_in(self, pipe: Pipeline) -> None:
        """Queue the release on `pipe`. EVAL, not a registered script: a pipeline holding one first
        asks Redis whether it is loaded, a round trip of its own."""
        pipe.eval(_RELEASE_LUA, 1, self.key, self.token)

    async def release(self) -> None:
        with contextlib.suppress(RedisError, OSError):
            await self._redis.eval(_RELEASE_LUA, 1, self.key, self.token)
