"""Each route's daily digest: when (a local time in a zone), what a quiet day posts, who set it; and
the one claim per route and day that keeps a day to one digest whatever runs its job.

A digest's `since` names it: turning it on again (another time, another zone) makes a new one, and
the jobs scheduled for the old one find it gone and stop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import redis.asyncio as aioredis

from bot.store import keys
from bot.store.redis import decoded, redis_errors

QuietDay = Literal["post", "skip"]
# Long enough for any retry of a day's job to find its claim.
SENT_KEPT_SECONDS = 2 * 86400
SENDING = "sending"

SendState = Literal["free", "sending", "sent"]


@dataclass(frozen=True)
class DigestConfig:
    route_id: str
    at: str  # HH:MM, local
    zone: str  # an IANA zone name
    quiet: QuietDay
    by: str
    since: float
    # The workspace whose Slack installation posts it (as the jobs' origin names it).
    team_id: str | None = None
    enterprise_id: str | None = None
    org_wide: bool = False


class DigestStore:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis

    async def put(self, config: DigestConfig) -> None:
        key = keys.digest(config.route_id)
        async with redis_errors(), self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            pipe.hset(
                key,
                mapping={
                    "at": config.at,
                    "zone": config.zone,
                    "quiet": config.quiet,
                    "by": config.by,
                    "since": repr(config.since),
                    "team": config.team_id or "",
                    "enterprise": config.enterprise_id or "",
                    "org_wide": int(config.org_wide),
                },
            )
            pipe.sadd(keys.digests(), config.route_id)
            await pipe.execute()

    async def route_ids(self) -> list[str]:
        async with redis_errors():
            return sorted(decoded(m) for m in await self._redis.smembers(keys.digests()))

    async def get(self, route_id: str) -> DigestConfig | None:
        async with redis_errors():
            raw = await self._redis.hgetall(keys.digest(route_id))
        data = {decoded(k): decoded(v) for k, v in raw.items()}
        if "at" not in data or "zone" not in data or "since" not in data:
            return None
        return DigestConfig(
            route_id=route_id,
            at=data["at"],
            zone=data["zone"],
            quiet="skip" if data.get("quiet") == "skip" else "post",
            by=data.get("by", ""),
            since=float(data["since"]),
            team_id=data.get("team") or None,
            enterprise_id=data.get("enterprise") or None,
            org_wide=data.get("org_wide") == "1",
        )

    async def forget(self, route_id: str) -> bool:
        async with redis_errors(), self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(keys.digest(route_id))
            pipe.srem(keys.digests(), route_id)
            removed, _ = await pipe.execute()
        return bool(removed)

    async def send_state(self, route_id: str, day: str) -> SendState:
        async with redis_errors():
            value = await self._redis.get(keys.digest_sent(route_id, day))
        if value is None:
            return "free"
        return "sending" if decoded(value) == SENDING else "sent"

    async def claim_send(self, route_id: str, day: str) -> bool:
        """Taken just before the day's digest is sent: whoever holds it is the one to send it."""
        async with redis_errors():
            return bool(
                await self._redis.set(keys.digest_sent(route_id, day), SENDING, nx=True, ex=SENT_KEPT_SECONDS)
            )

    async def release_send(self, route_id: str, day: str) -> None:
        """Slack refused it: nothing went out, so a later attempt may send it."""
        async with redis_errors():
            await self._redis.delete(keys.digest_sent(route_id, day))

    async def sent(self, route_id: str, day: str, ts: str) -> None:
        async with redis_errors():
            await self._redis.set(keys.digest_sent(route_id, day), ts or "sent", ex=SENT_KEPT_SECONDS)
