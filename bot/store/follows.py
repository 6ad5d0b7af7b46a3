"""Followed messages: one record per message, encrypted, guarded by a generation.

A record's state is opaque here (the jobs layer owns its shape); it holds a response_url, so it is
one Fernet token. Each Follow starts a new generation; a poll writes back only while its generation is
current, so an Unfollow (or a newer Follow) can never be undone by a poll that was already running.
"""

from __future__ import annotations

import time

import redis.asyncio as aioredis

from bot.store import keys
from bot.store.crypto import Cipher, InvalidToken
from bot.store.redis import redis_errors

# Members of follows that lapsed without being ended (a chain of polls lost with a Redis that failed
# over before it replicated them) are taken out here, so the two sets stay bounded by the live follows
# and never keep one longer than a record lives: the workspace's set is scored by start, the other by
# lapse time.
_START = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', tonumber(ARGV[4]) - tonumber(ARGV[3]))
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[4])
redis.call('HSET', KEYS[1], 'gen', ARGV[1], 'state', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[5])
redis.call('ZADD', KEYS[3], ARGV[4] + ARGV[3], ARGV[5])
return 1
"""
# Write the state only while the generation is still the one the writer read.
_SAVE_IF_CURRENT = """
if redis.call('HGET', KEYS[1], 'gen') ~= ARGV[1] then return 0 end
if tonumber(redis.call('HGET', KEYS[1], 'seq') or '0') > tonumber(ARGV[4]) then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'seq', ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('ZADD', KEYS[2], 'XX', ARGV[5] + ARGV[3], ARGV[6])
return 1
"""
_DELETE_IF_CURRENT = """
if ARGV[1] ~= '' and redis.call('HGET', KEYS[1], 'gen') ~= ARGV[1] then return 0 end
local existed = redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('ZREM', KEYS[3], ARGV[2])
return existed
"""


class FollowStore:
    def __init__(self, redis: aioredis.Redis, cipher: Cipher) -> None:
        self._redis = redis
        self._cipher = cipher
        self._start = redis.register_script(_START)
        self._save = redis.register_script(_SAVE_IF_CURRENT)
        self._delete = redis.register_script(_DELETE_IF_CURRENT)

    async def start(
        self, workspace: str, follow_id: str, generation: str, state: bytes, ttl_seconds: int
    ) -> bool:
        """Create the record; False when this message is already followed (one follower per message)."""
        token = self._cipher.encrypt(state)
        async with redis_errors():
            created = await self._start(
                keys=[keys.follow(follow_id), keys.follows_of(workspace), keys.follows_live()],
                args=[generation, token, ttl_seconds, time.time(), follow_id],
            )
        return bool(created)

    async def load(self, follow_id: str) -> tuple[str, bytes] | None:
        """(generation, state), or None when not followed (any more) or unreadable."""
        async with redis_errors():
            generation, token = await self._redis.hmget(keys.follow(follow_id), ["gen", "state"])
        if generation is None or token is None:
            return None
        try:
            gen = generation.decode() if isinstance(generation, bytes) else str(generation)
            return gen, self._cipher.decrypt(token)
        except InvalidToken:
            return None

    async def save(
        self, follow_id: str, generation: str, state: bytes, ttl_seconds: int, seq: int = 0
    ) -> bool:
        """Write back a poll's state; refused for another generation, or an older poll than the last."""
        token = self._cipher.encrypt(state)
        async with redis_errors():
            saved = await self._save(
                keys=[keys.follow(follow_id), keys.follows_live()],
                args=[generation, token, ttl_seconds, seq, time.time(), follow_id],
            )
        return bool(saved)

    async def stop(self, workspace: str, follow_id: str, generation: str | None = None) -> bool:
        """End a follow (only `generation`'s, when given). True when there was one to end."""
        async with redis_errors():
            ended = await self._delete(
                keys=[keys.follow(follow_id), keys.follows_of(workspace), keys.follows_live()],
                args=[generation or "", follow_id],
            )
        return bool(ended)

    async def active(self, workspace: str, limit: int = 50) -> list[tuple[str, bytes]]:
        """The workspace's follows, newest first, as (follow_id, state); lapsed ones are pruned."""
        async with redis_errors():
            members = await self._redis.zrevrange(keys.follows_of(workspace), 0, limit - 1)
        ids = [m.decode() if isinstance(m, bytes) else str(m) for m in members]
        found: list[tuple[str, bytes]] = []
        for follow_id in ids:
            record = await self.load(follow_id)
            if record is None:
                async with redis_errors():
                    await self._redis.zrem(keys.follows_of(workspace), follow_id)
                continue
            found.append((follow_id, record[1]))
        return found

    async def count_live(self) -> int:
        """Follows in every workspace that have not lapsed; lapsed entries are pruned on the way."""
        now = time.time()
        async with redis_errors(), self._redis.pipeline(transaction=False) as pipe:
            pipe.zremrangebyscore(keys.follows_live(), "-inf", now)
            pipe.zcard(keys.follows_live())
            _, live = await pipe.execute()
        return int(live)
