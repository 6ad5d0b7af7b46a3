"""A route's deliveries counted by quarter hour, for the daily digest: runs errored per workflow,
per cause and per linked account, with the counts of the weeks before beside them.

Quarter hours in UTC, so any zone's day (every zone's offset is a whole number of quarter hours, and
a day of a daylight-saving change is 23 or 25 hours of them) is the sum of its buckets. Each bucket
is a hash of counters and a set of the runs it counted, so a delivery recorded twice (a job run
again) counts once. Bounded: at most MAX_FIELDS counters a bucket, and every bucket expires
KEEP_SECONDS after its quarter hour.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

import redis.asyncio as aioredis

from bot.store import keys
from bot.store.redis import decoded, redis_errors

BUCKET_SECONDS = 15 * 60
KEEP_SECONDS = 14 * 86400
MAX_FIELDS = 2000
Outcome = Literal["failed", "completed"]

# KEYS: the bucket, its runs. ARGV: execution, outcome, workflow, cause, cause label, cause's
# workflow, account, ttl, max fields. A counter that is not there yet is added only while the bucket
# has room; the totals always count.
_RECORD = """
if redis.call('SADD', KEYS[2], ARGV[1]) == 0 then return 0 end
redis.call('EXPIRE', KEYS[2], ARGV[8])
local room = redis.call('HLEN', KEYS[1]) < tonumber(ARGV[9])
local function add(name, by)
  if room or redis.call('HEXISTS', KEYS[1], name) == 1 then redis.call('HINCRBY', KEYS[1], name, by) end
end
if ARGV[2] == 'completed' then
  redis.call('HINCRBY', KEYS[1], 't:completed', 1)
else
  redis.call('HINCRBY', KEYS[1], 't:errored', 1)
  add('w:' .. ARGV[3], 1)
  if ARGV[7] ~= '' then add('u:' .. ARGV[7], 1) end
  if ARGV[4] ~= '' then
    add('c:' .. ARGV[4], 1)
    if room then
      redis.call('HSETNX', KEYS[1], 'l:' .. ARGV[4], ARGV[5])
      redis.call('HSETNX', KEYS[1], 'cw:' .. ARGV[4], ARGV[6])
    end
    if ARGV[7] ~= '' then add('a:' .. ARGV[4] .. ':' .. ARGV[7], 1) end
  end
end
redis.call('EXPIRE', KEYS[1], ARGV[8])
return 1
"""


@dataclass(frozen=True)
class CountedCause:
    key: str
    workflow: str
    node: str  # the failing step, "" when none is known
    error: str  # normalised, as the incident shows it

    @property
    def label(self) -> str:
        return f"{self.node}\t{self.error}"


@dataclass
class Tally:
    """What one stretch of time's buckets add up to."""

    errored: int = 0
    completed: int = 0
    by_workflow: Counter[str] = field(default_factory=Counter)
    by_account: Counter[str] = field(default_factory=Counter)
    by_cause: Counter[str] = field(default_factory=Counter)
    causes: dict[str, CountedCause] = field(default_factory=dict)
    cause_accounts: dict[str, Counter[str]] = field(default_factory=dict)

    def add(self, bucket: dict[str, str]) -> None:
        for name, value in bucket.items():
            kind, _, rest = name.partition(":")
            match kind:
                case "t":
                    if rest == "errored":
                        self.errored += int(value)
                    elif rest == "completed":
                        self.completed += int(value)
                case "w":
                    self.by_workflow[rest] += int(value)
                case "u":
                    self.by_account[rest] += int(value)
                case "c":
                    self.by_cause[rest] += int(value)
                    if rest not in self.causes:
                        node, _, error = bucket.get(f"l:{rest}", "").partition("\t")
                        self.causes[rest] = CountedCause(rest, bucket.get(f"cw:{rest}", ""), node, error)
                case "a":
                    cause, _, account = rest.partition(":")
                    self.cause_accounts.setdefault(cause, Counter())[account] += int(value)
                case _:
                    pass  # labels, read with their counters


def buckets_between(start: float, end: float) -> list[int]:
    """The quarter hours that begin in [start, end)."""
    first = -(-int(start) // BUCKET_SECONDS) * BUCKET_SECONDS
    return list(range(first, int(end), BUCKET_SECONDS))


class DailyCounts:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis
        self._record = redis.register_script(_RECORD)

    async def record(
        self,
        route_id: str,
        *,
        execution_id: str,
        outcome: Outcome,
        workflow: str,
        account: str | None,
        cause: CountedCause | None,
        now: float,
    ) -> bool:
        """Count one delivery in its quarter hour (once, however often asked)."""
        bucket = int(now) // BUCKET_SECONDS * BUCKET_SECONDS
        key = keys.daily_counts(route_id, bucket)
        ttl = max(1, int(bucket + BUCKET_SECONDS + KEEP_SECONDS - now))
        async with redis_errors():
            counted = await self._record(
                keys=[key, key + ":runs"],
                args=[
                    execution_id,
                    outcome,
                    workflow,
                    cause.key if cause else "",
                    cause.label if cause else "",
                    cause.workflow if cause else "",
                    account or "",
                    ttl,
                    MAX_FIELDS,
                ],
            )
        return bool(counted)

    async def tallies(self, route_id: str, windows: Iterable[tuple[float, float]]) -> list[Tally]:
        """Each window's tally, in one round trip for them all."""
        spans = [buckets_between(start, end) for start, end in windows]
        async with redis_errors(), self._redis.pipeline(transaction=False) as pipe:
            for span in spans:
                for bucket in span:
                    pipe.hgetall(keys.daily_counts(route_id, bucket))
            raw = await pipe.execute()
        found = iter(raw)
        tallies = []
        for span in spans:
            tally = Tally()
            for _ in span:
                tally.add({decoded(k): decoded(v) for k, v in next(found).items()})
            tallies.append(tally)
        return tallies
