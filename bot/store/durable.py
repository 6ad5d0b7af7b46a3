"""Writes that must outlive a failover: credentials, alert routes, installations.

They are applied atomically (one script), then, when the primary has replicas, `WAIT 1` holds the
answer until a replica has them too: a person told "connected" is not made to connect again because
the primary died a second later. WAIT counts the writes of its own connection, so the script and the
WAIT share one.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from bot.store.redis import redis_errors

log = logging.getLogger(__name__)

REPLICA_WAIT_MS = 1000
# How long the primary's replica count is trusted; a replica added later is waited for from then on.
REPLICAS_CHECK_SECONDS = 10.0

# ARGV is a flat list of commands, each its length, then its words: [2, "DEL", "k", 3, "SET", "k", "v"].
_APPLY = """
local i = 1
while i <= #ARGV do
  local n = tonumber(ARGV[i])
  redis.call(unpack(ARGV, i + 1, i + n))
  i = i + n + 1
end
return 1
"""

Command = Sequence[str | bytes | int | float]


class DurableWrites:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis
        self._apply = redis.register_script(_APPLY)
        self._replicas = 0
        self._checked_at = -math.inf

    async def apply(self, keys: Sequence[str], *commands: Command) -> None:
        """Run `commands` (touching `keys`) as one, then wait for a replica when there is one."""
        flat: list[str | bytes | int | float] = []
        for command in commands:
            flat += [len(command), *command]
        async with redis_errors(), self._redis.client() as conn:
            await self._apply(keys=list(keys), args=flat, client=conn)
            if await self._has_replicas(conn):
                acknowledged = int(await conn.execute_command("WAIT", 1, REPLICA_WAIT_MS))
                if acknowledged < 1:
                    log.warning(
                        "a write reached the Redis primary but no replica within %d ms; "
                        "a failover now could lose it",
                        REPLICA_WAIT_MS,
                    )

    async def _has_replicas(self, conn: aioredis.Redis) -> bool:
        now = time.monotonic()
        if now - self._checked_at >= REPLICAS_CHECK_SECONDS:
            try:
                info = await conn.info("replication")
                self._replicas = int(info.get("connected_slaves", 0))
            except ResponseError:
                # INFO is disabled on some managed Redis: no way to tell, so no waiting.
                self._replicas = 0
            self._checked_at = now
        return self._replicas > 0
