"""Per-workspace audit log: a capped Redis stream of who did what to which execution, and how it went."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import redis.asyncio as aioredis

from bot.store import keys
from bot.store.redis import decoded, redis_errors

MAX_ENTRIES = 1000


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    who: str  # a Slack user ID, or "cli"
    action: str  # rerun | stop | connect | disconnect
    execution_id: str  # "" for connects
    result: str  # ok | refused | failed
    detail: str = ""  # the new execution of a rerun, the reason of a failure


class AuditLog:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis

    async def append(self, workspace: str, entry: AuditEntry) -> None:
        fields: dict[str, str] = {
            "at": entry.at.astimezone(UTC).isoformat(timespec="seconds"),
            "who": entry.who,
            "action": entry.action,
            "execution": entry.execution_id,
            "result": entry.result,
            "detail": entry.detail[:300],
        }
        async with redis_errors():
            # Approximate trimming keeps XADD O(1); the log holds at least MAX_ENTRIES.
            await self._redis.xadd(keys.audit(workspace), fields, maxlen=MAX_ENTRIES, approximate=True)  # type: ignore[arg-type]

    async def forget(self, workspace: str) -> None:
        async with redis_errors():
            await self._redis.delete(keys.audit(workspace))

    async def latest(self, workspace: str, count: int = 5) -> list[AuditEntry]:
        """Newest first."""
        async with redis_errors():
            rows = await self._redis.xrevrange(keys.audit(workspace), count=count)
        entries = []
        for _, raw in rows or []:
            data = {decoded(k): decoded(v) for k, v in (raw or {}).items()}
            try:
                at = datetime.fromisoformat(data.get("at", ""))
            except ValueError:
                continue
            entries.append(
                AuditEntry(
                    at=at,
                    who=data.get("who", "?"),
                    action=data.get("action", "?"),
                    execution_id=data.get("execution", ""),
                    result=data.get("result", "?"),
                    detail=data.get("detail", ""),
                )
            )
        return entries
