"""Incidents: failures of one cause in one alert route, gathered under one message.

Per route and cause, one hash holds the cause's current episode:
- `single`: one failure so far; it got its own card (`card_ts` once posted).
- `open`: a second failure of the cause came within GROUP_SECONDS of the first; that first card's
  message becomes the incident message and every run of the cause is listed in its thread.
- `resolved`: someone pressed Resolve. An open incident with no failure for RESOLVE_SECONDS is
  resolved too, by itself. Either way a failure of the cause within REOPEN_SECONDS of the resolution
  reopens the same message; a later one starts afresh with its own card.

Beside the hash: the accounts hit (a set, counted exactly up to MAX_ACCOUNTS, the first few kept by
name), the runs (a list capped at MAX_LISTED_RUNS; beyond it runs are only counted), the thread's
batch messages, and the reruns (one record per execution, claimed before Refold is called).

Every decision is recorded under the alert's name for a short while, so a job run again after its
worker died gets the same decision and counts nothing twice. Turning the first card into the incident
is claimed once (`convert`), by whichever comes second: the job that posted the first card, or the
one that opened the incident. A snoozed cause (its own key, surviving episodes) posts nothing: its
failures are counted on the snooze and, while its incident is open, on the incident.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

import redis.asyncio as aioredis

from bot.store import keys
from bot.store.redis import decoded, redis_errors

GROUP_SECONDS = 15 * 60
RESOLVE_SECONDS = 30 * 60
REOPEN_SECONDS = 2 * 3600
# Long enough to reopen a message resolved by quiet: the resolve window, then the reopen window.
STATE_TTL_SECONDS = RESOLVE_SECONDS + REOPEN_SECONDS + 600
# A job's own retries (3 attempts of at most 100 s, a dead worker's sweep) end well within this.
DECISION_TTL_SECONDS = 15 * 60
MAX_ACCOUNTS = 1000
SHOWN_ACCOUNTS = 5
# Stored run IDs per incident: the thread lists them, Rerun failed reruns them. Beyond, counted only.
MAX_LISTED_RUNS = 500
RUNS_PER_BATCH = 20
# A thread batch claimed by a job that has not posted it for this long is taken over by another.
BATCH_CLAIM_SECONDS = 60
SNOOZE_KEPT_SECONDS = 600
# A cause's earlier episodes are remembered this long; "first in 7 days" looks back over the window.
EPISODES_KEPT_SECONDS = 14 * 86400
EPISODE_WINDOW_SECONDS = 7 * 86400

Role = Literal["card", "open", "join", "held"]
BatchTurn = Literal["post", "update", "busy"]
RerunClaim = Literal["mine", "taken", "interrupted"]
IncidentState = Literal["single", "open", "resolved"]

_SUFFIXES = (":accounts", ":first-accounts", ":recovered", ":runs", ":batches", ":reruns", ":rerun-status")

# KEYS: 1 incident hash, 2 accounts set, 3 first-accounts list, 4 the route's incidents (a sorted set
# of causes by last failure), 5 recovered accounts, 6 runs list, 7 batches hash, 8 reruns hash,
# 9 rerun statuses hash, 10 the alert's decision, 11 the cause's snooze, 12 the cause's episodes.
# ARGV: 1 now, 2 execution ID, 3 linked account, 4 group window, 5 resolve window, 6 reopen window,
# 7 ttl, 8 max accounts, 9 shown accounts, 10 max listed runs, 11 decision ttl, 12 cause,
# 13-17 cause fields (workflow, node, node type, error, workflow ID), 18 how long episodes are kept.
_ARRIVE = """
local decided = redis.call('GET', KEYS[10])
if decided then
  return {decided, redis.call('HGET', KEYS[1], 'card_ts') or '', redis.call('HGET', KEYS[1], 'gen') or ''}
end
local now = tonumber(ARGV[1])
local state = redis.call('HGET', KEYS[1], 'state')
local first = tonumber(redis.call('HGET', KEYS[1], 'first') or '-1e18')
local last = tonumber(redis.call('HGET', KEYS[1], 'last') or '-1e18')
local card_ts = redis.call('HGET', KEYS[1], 'card_ts')
local resolved_at = -1e18
if state == 'resolved' then
  resolved_at = tonumber(redis.call('HGET', KEYS[1], 'resolved_at') or '-1e18')
elseif state == 'open' then
  resolved_at = last + tonumber(ARGV[5])
end
local role, reopen
if state == 'open' and now - last <= tonumber(ARGV[5]) then
  role = 'join'
elseif card_ts and (state == 'open' or state == 'resolved') and now - resolved_at <= tonumber(ARGV[6]) then
  role, reopen = 'join', true
elseif state == 'single' and now - first <= tonumber(ARGV[4]) then
  role = 'open'
else
  role = 'card'
end
local snoozed = tonumber(redis.call('HGET', KEYS[11], 'until') or '0') > now
if snoozed and role ~= 'join' then
  -- No message of this cause to count it on: the snooze counts it alone.
  redis.call('HINCRBY', KEYS[11], 'held', 1)
  redis.call('SET', KEYS[10], 'held', 'EX', ARGV[11])
  return {'held', card_ts or '', redis.call('HGET', KEYS[1], 'gen') or ''}
end
if role == 'card' then
  local gen = redis.call('HINCRBY', KEYS[1], 'gen', 1)
  redis.call('DEL', KEYS[2], KEYS[3], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9])
  redis.call('HDEL', KEYS[1], 'card_ts', 'convert', 'opened', 'accounts_over', 'resolved_at',
    'resolved_by', 'reopened', 'rerun_by', 'rerun_at', 'rerun_asked')
  redis.call('HSET', KEYS[1], 'state', 'single', 'first', ARGV[1], 'runs', 0,
    'first_exec', ARGV[2], 'first_account', ARGV[3],
    'workflow', ARGV[13], 'node', ARGV[14], 'node_type', ARGV[15], 'error', ARGV[16],
    'workflow_id', ARGV[17])
  redis.call('ZADD', KEYS[12], ARGV[1], gen)
  redis.call('ZREMRANGEBYSCORE', KEYS[12], '-inf', now - tonumber(ARGV[18]))
  redis.call('EXPIRE', KEYS[12], ARGV[18])
elseif role == 'open' then
  redis.call('HSET', KEYS[1], 'state', 'open', 'opened', ARGV[1])
elseif reopen then
  redis.call('HSET', KEYS[1], 'state', 'open', 'reopened', ARGV[1])
  redis.call('HDEL', KEYS[1], 'resolved_at', 'resolved_by')
end
if snoozed then
  redis.call('HINCRBY', KEYS[11], 'held', 1)
  role = 'held'
end
redis.call('SET', KEYS[10], role, 'EX', ARGV[11])
redis.call('HSET', KEYS[1], 'last', ARGV[1])
redis.call('HINCRBY', KEYS[1], 'runs', 1)
if redis.call('LLEN', KEYS[6]) < tonumber(ARGV[10]) then
  redis.call('RPUSH', KEYS[6], ARGV[2] .. '\\t' .. ARGV[3] .. '\\t' .. ARGV[1])
end
-- An account failing again has not recovered after all.
if ARGV[3] ~= '' then redis.call('SREM', KEYS[5], ARGV[3]) end
if ARGV[3] ~= '' and redis.call('SISMEMBER', KEYS[2], ARGV[3]) == 0 then
  if redis.call('SCARD', KEYS[2]) < tonumber(ARGV[8]) then
    redis.call('SADD', KEYS[2], ARGV[3])
    if redis.call('LLEN', KEYS[3]) < tonumber(ARGV[9]) then redis.call('RPUSH', KEYS[3], ARGV[3]) end
  else
    redis.call('HINCRBY', KEYS[1], 'accounts_over', 1)
  end
end
if role ~= 'card' then redis.call('ZADD', KEYS[4], ARGV[1], ARGV[12]) end
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now - tonumber(ARGV[7]))
for i = 1, 9 do
  if redis.call('EXISTS', KEYS[i]) == 1 then redis.call('EXPIRE', KEYS[i], ARGV[7]) end
end
return {role, redis.call('HGET', KEYS[1], 'card_ts') or '', redis.call('HGET', KEYS[1], 'gen')}
"""

# KEYS: incident hash. ARGV: generation, the caller's job, the first card's ts ('' when not known here).
# Returns the first card's ts when the caller is to turn it into the incident (the incident is open, the
# card posted, and the turn is the caller's: claimed now, or by an earlier run of the same job), else ''.
_CLAIM_CONVERT = """
if redis.call('HGET', KEYS[1], 'gen') ~= ARGV[1] then return '' end
if ARGV[3] ~= '' then redis.call('HSETNX', KEYS[1], 'card_ts', ARGV[3]) end
local ts = redis.call('HGET', KEYS[1], 'card_ts')
if (not ts) or redis.call('HGET', KEYS[1], 'state') ~= 'open' then return '' end
redis.call('HSETNX', KEYS[1], 'convert', ARGV[2])
if redis.call('HGET', KEYS[1], 'convert') == ARGV[2] then return ts end
return ''
"""

# KEYS: incident hash, batches hash. ARGV: generation, batch index, job, now, claim seconds, ttl.
# A batch's field holds its message ts once posted, or `claim:<job>:<since>` while a job posts it.
_CLAIM_BATCH = """
if redis.call('HGET', KEYS[1], 'gen') ~= ARGV[1] then return {'busy', ''} end
local field = 'b' .. ARGV[2]
local held = redis.call('HGET', KEYS[2], field)
if held and string.sub(held, 1, 6) ~= 'claim:' then return {'update', held} end
if held then
  local owner, since = string.match(held, '^claim:(.*):([0-9.]+)$')
  if owner ~= ARGV[3] and tonumber(ARGV[4]) - tonumber(since) < tonumber(ARGV[5]) then
    return {'busy', ''}
  end
end
redis.call('HSET', KEYS[2], field, 'claim:' .. ARGV[3] .. ':' .. ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[6])
return {'post', ''}
"""

# KEYS: reruns hash. ARGV: execution ID, job. A run's field is `claim:<job>` until Refold names the new
# run (then its ID), or `failed:<job>` when Refold refused it (a later press may try it again).
_CLAIM_RERUN = """
local held = redis.call('HGET', KEYS[1], ARGV[1])
if (not held) or string.sub(held, 1, 7) == 'failed:' then
  redis.call('HSET', KEYS[1], ARGV[1], 'claim:' .. ARGV[2])
  return 'mine'
end
if held == 'claim:' .. ARGV[2] then return 'interrupted' end
return 'taken'
"""


@dataclass(frozen=True)
class CauseFields:
    workflow: str
    node: str
    node_type: str
    error: str
    workflow_id: str = ""


@dataclass(frozen=True)
class Arrival:
    role: Role
    card_ts: str  # the cause's first card (the incident message once open); '' until posted
    generation: str  # which episode of the cause this failure belongs to


@dataclass(frozen=True)
class RunEntry:
    execution_id: str
    account: str
    at: float


@dataclass(frozen=True)
class Batch:
    ts: str  # its thread message; '' while not posted
    shown: int  # runs it showed when last posted or edited


@dataclass(frozen=True)
class Snooze:
    until: float
    by: str
    held: int


@dataclass(frozen=True)
class Reruns:
    """A Rerun failed press and how its runs went."""

    by: str
    at: float
    asked: int  # runs the presses were for
    started: int  # new runs Refold named
    unconfirmed: int  # asked of Refold and not answered yet, or by a worker that died: not asked again
    failed: int  # Refold refused them: a later press tries them again
    statuses: dict[str, int]  # the new runs by their latest status


@dataclass(frozen=True)
class IncidentView:
    """What the incident message, its thread and its buttons show."""

    state: IncidentState
    generation: str
    cause: CauseFields
    runs: int
    accounts: int
    first_accounts: list[str]
    first_seen: float
    last_seen: float
    card_ts: str
    first_execution: str
    first_account: str
    recovered: int = 0  # accounts hit that have succeeded since their last failure here
    listed: list[RunEntry] = field(default_factory=list)
    batches: dict[int, Batch] = field(default_factory=dict)
    resolved_at: float | None = None
    resolved_by: str | None = None
    reopened_at: float | None = None
    snooze: Snooze | None = None
    reruns: Reruns | None = None
    rerun_done: frozenset[str] = frozenset()  # listed executions rerun, or being rerun
    opened_at: float | None = None
    earlier_episodes: int = 0  # of this cause in this route in the 7 days before this one began
    last_episode: float | None = None  # when the latest earlier one began (within 14 days)

    @property
    def pending(self) -> list[RunEntry]:
        """Listed runs not rerun yet: what Rerun failed would start."""
        return [run for run in self.listed if run.execution_id not in self.rerun_done]

    def snoozed(self, now: float) -> bool:
        return self.snooze is not None and self.snooze.until > now


class IncidentStore:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis
        self._arrive = redis.register_script(_ARRIVE)
        self._claim_convert = redis.register_script(_CLAIM_CONVERT)
        self._claim_batch = redis.register_script(_CLAIM_BATCH)
        self._claim_rerun = redis.register_script(_CLAIM_RERUN)

    @staticmethod
    def _own(route_id: str, cause: str) -> dict[str, str]:
        base = keys.incident(route_id, cause)
        return {"base": base, **{s[1:]: base + s for s in _SUFFIXES}}

    async def arrive(
        self,
        route_id: str,
        cause: str,
        fields: CauseFields,
        *,
        alert: str,
        execution_id: str,
        account: str | None,
        now: float,
    ) -> Arrival:
        own = self._own(route_id, cause)
        async with redis_errors():
            role, card_ts, gen = await self._arrive(
                keys=[
                    own["base"],
                    own["accounts"],
                    own["first-accounts"],
                    keys.incidents_of(route_id),
                    own["recovered"],
                    own["runs"],
                    own["batches"],
                    own["reruns"],
                    own["rerun-status"],
                    keys.incident_decision(route_id, alert),
                    keys.cause_snooze(route_id, cause),
                    keys.cause_episodes(route_id, cause),
                ],
                args=[
                    now,
                    execution_id,
                    account or "",
                    GROUP_SECONDS,
                    RESOLVE_SECONDS,
                    REOPEN_SECONDS,
                    STATE_TTL_SECONDS,
                    MAX_ACCOUNTS,
                    SHOWN_ACCOUNTS,
                    MAX_LISTED_RUNS,
                    DECISION_TTL_SECONDS,
                    cause,
                    fields.workflow,
                    fields.node,
                    fields.node_type,
                    fields.error,
                    fields.workflow_id,
                    EPISODES_KEPT_SECONDS,
                ],
            )
        decided = decoded(role)
        assert decided in ("card", "open", "join", "held")
        return Arrival(decided, decoded(card_ts), decoded(gen))  # type: ignore[arg-type]

    async def claim_convert(
        self, route_id: str, cause: str, generation: str, job: str, card_ts: str = ""
    ) -> str:
        """Record the first card's message (`card_ts`, from the job that posted it) and claim turning
        it into the incident: its ts when that is this job's to do, else ''."""
        async with redis_errors():
            ts = await self._claim_convert(
                keys=[keys.incident(route_id, cause)], args=[generation, job, card_ts]
            )
        return decoded(ts)

    async def open_causes(self, route_id: str, *, now: float, limit: int = 20) -> list[str]:
        """The route's incidents with a failure within the resolve window, latest first."""
        async with redis_errors():
            causes = await self._redis.zrevrangebyscore(
                keys.incidents_of(route_id), "+inf", now - RESOLVE_SECONDS, start=0, num=limit
            )
        return [decoded(c) for c in causes if isinstance(c, bytes | str)]

    async def succeeded(self, route_id: str, workflow: str, account: str, *, now: float) -> list[str]:
        """A run of `workflow` (ID or name) completed for `account`: the open incidents that account
        was hit by count it as recovered. Their causes."""
        changed = []
        for cause in await self.open_causes(route_id, now=now):
            own = self._own(route_id, cause)
            async with redis_errors():
                names = await self._redis.hmget(own["base"], ["workflow_id", "workflow"])
                if workflow.casefold() not in {decoded(n).casefold() for n in names if n}:
                    continue
                if await self._recover(own, account):
                    changed.append(cause)
        return changed

    async def _recover(self, own: dict[str, str], account: str) -> bool:
        if not await self._redis.sismember(own["accounts"], account):
            return False
        added = bool(await self._redis.sadd(own["recovered"], account))
        await self._redis.expire(own["recovered"], STATE_TTL_SECONDS)
        return added

    # --- the thread's batches -------------------------------------------------

    async def claim_batch(
        self, route_id: str, cause: str, generation: str, index: int, job: str, *, now: float
    ) -> tuple[BatchTurn, str]:
        """Whose turn batch `index` is: ("post", '') to post it (claimed for `job`), ("update", ts) when
        it is posted, ("busy", '') while another job posts it."""
        own = self._own(route_id, cause)
        async with redis_errors():
            turn, ts = await self._claim_batch(
                keys=[own["base"], own["batches"]],
                args=[generation, index, job, now, BATCH_CLAIM_SECONDS, STATE_TTL_SECONDS],
            )
        decided = decoded(turn)
        assert decided in ("post", "update", "busy")
        return decided, decoded(ts)  # type: ignore[return-value]

    async def batch_shown(self, route_id: str, cause: str, index: int, ts: str, shown: int) -> None:
        own = self._own(route_id, cause)
        async with redis_errors(), self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(own["batches"], mapping={f"b{index}": ts, f"n{index}": shown})
            pipe.expire(own["batches"], STATE_TTL_SECONDS)
            await pipe.execute()

    # --- actions on the message -------------------------------------------------

    async def resolve(self, route_id: str, cause: str, who: str, *, now: float) -> bool:
        """Mark the open incident resolved by `who`; False when it is not open."""
        own = self._own(route_id, cause)
        async with redis_errors():
            state = await self._redis.hget(own["base"], "state")
            if state is None or decoded(state) != "open":
                return False
            await self._redis.hset(
                own["base"], mapping={"state": "resolved", "resolved_at": now, "resolved_by": who}
            )
            await self._redis.zrem(keys.incidents_of(route_id), cause)
        return True

    async def snooze(self, route_id: str, cause: str, who: str, *, until: float, now: float) -> None:
        key = keys.cause_snooze(route_id, cause)
        async with redis_errors(), self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={"until": until, "by": who})
            pipe.hsetnx(key, "held", 0)
            # Kept a while past its end, so the message can say what it held back.
            pipe.expire(key, max(1, int(until - now)) + SNOOZE_KEPT_SECONDS)
            await pipe.execute()

    async def unsnooze(self, route_id: str, cause: str) -> bool:
        async with redis_errors():
            return bool(await self._redis.delete(keys.cause_snooze(route_id, cause)))

    # --- Rerun failed ---------------------------------------------------------------

    async def press_rerun(self, route_id: str, cause: str, who: str, asked: int, *, now: float) -> None:
        async with redis_errors():
            await self._redis.hset(
                self._own(route_id, cause)["base"],
                mapping={"rerun_by": who, "rerun_at": now, "rerun_asked": asked},
            )

    async def claim_rerun(self, route_id: str, cause: str, execution_id: str, job: str) -> RerunClaim:
        """Before Refold is asked to rerun `execution_id`: "mine" to call it, "taken" when another
        press has, "interrupted" when this job claimed it before its worker died (Refold may have
        started it: it is not asked again)."""
        own = self._own(route_id, cause)
        async with redis_errors():
            claim = decoded(await self._claim_rerun(keys=[own["reruns"]], args=[execution_id, job]))
            await self._redis.expire(own["reruns"], STATE_TTL_SECONDS)
        assert claim in ("mine", "taken", "interrupted")
        return claim  # type: ignore[return-value]

    async def rerun_refused(self, route_id: str, cause: str, execution_id: str, job: str) -> None:
        """Refold refused the rerun (nothing started): a later press may try it again."""
        async with redis_errors():
            await self._redis.hset(self._own(route_id, cause)["reruns"], execution_id, f"failed:{job}")

    async def rerun_started(self, route_id: str, cause: str, execution_id: str, new_id: str) -> None:
        own = self._own(route_id, cause)
        async with redis_errors(), self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(own["reruns"], execution_id, new_id)
            pipe.hset(own["rerun-status"], new_id, "QUEUED")
            pipe.expire(own["rerun-status"], STATE_TTL_SECONDS)
            await pipe.execute()

    async def reruns_running(
        self, route_id: str, cause: str, terminal: frozenset[str]
    ) -> list[tuple[str, str]]:
        """The new runs not yet ended, with the linked account of the run each replaced."""
        view = await self.view(route_id, cause)
        if view is None:
            return []
        own = self._own(route_id, cause)
        async with redis_errors():
            raw_reruns = await self._redis.hgetall(own["reruns"])
            raw_status = await self._redis.hgetall(own["rerun-status"])
        statuses = {decoded(k): decoded(v) for k, v in raw_status.items()}
        accounts = {run.execution_id: run.account for run in view.listed}
        running = []
        for old, new in ((decoded(k), decoded(v)) for k, v in raw_reruns.items()):
            if new.startswith(("claim:", "failed:")) or statuses.get(new, "").upper() in terminal:
                continue
            running.append((new, accounts.get(old, "")))
        return running

    async def rerun_status(
        self, route_id: str, cause: str, new_id: str, status: str, *, account: str, completed: bool
    ) -> None:
        """The latest status of a new run; a completed one recovers its account."""
        own = self._own(route_id, cause)
        async with redis_errors():
            await self._redis.hset(own["rerun-status"], new_id, status)
            if completed and account:
                await self._recover(own, account)

    # --- reading -------------------------------------------------------------------

    async def view(self, route_id: str, cause: str) -> IncidentView | None:
        own = self._own(route_id, cause)
        async with redis_errors(), self._redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(own["base"])
            pipe.scard(own["accounts"])
            pipe.lrange(own["first-accounts"], 0, -1)
            pipe.scard(own["recovered"])
            pipe.lrange(own["runs"], 0, -1)
            pipe.hgetall(own["batches"])
            pipe.hgetall(own["reruns"])
            pipe.hgetall(own["rerun-status"])
            pipe.hgetall(keys.cause_snooze(route_id, cause))
            pipe.zrange(keys.cause_episodes(route_id, cause), 0, -1, withscores=True)
            (
                raw,
                count,
                named,
                healed,
                runs,
                batches,
                reruns,
                statuses,
                snooze,
                episodes,
            ) = await pipe.execute()
        data = {decoded(k): decoded(v) for k, v in raw.items()}
        if "state" not in data:
            return None
        done = {decoded(k): decoded(v) for k, v in reruns.items()}
        began = float(data.get("first", "0"))
        earlier = [float(at) for _, at in episodes if float(at) < began]
        taken = frozenset(k for k, v in done.items() if not v.startswith("failed:"))
        return IncidentView(
            state=_state(data["state"]),
            generation=data.get("gen", ""),
            cause=CauseFields(
                data.get("workflow", ""),
                data.get("node", ""),
                data.get("node_type", ""),
                data.get("error", ""),
                data.get("workflow_id", ""),
            ),
            runs=int(data.get("runs", "0")),
            accounts=int(count) + int(data.get("accounts_over", "0")),
            first_accounts=[decoded(a) for a in named],
            first_seen=float(data.get("first", "0")),
            last_seen=float(data.get("last", "0")),
            card_ts=data.get("card_ts", ""),
            first_execution=data.get("first_exec", ""),
            first_account=data.get("first_account", ""),
            recovered=int(healed),
            listed=[_run(decoded(r)) for r in runs],
            batches=_batches({decoded(k): decoded(v) for k, v in batches.items()}),
            resolved_at=_float(data.get("resolved_at")),
            resolved_by=data.get("resolved_by"),
            reopened_at=_float(data.get("reopened")),
            snooze=_snooze({decoded(k): decoded(v) for k, v in snooze.items()}),
            reruns=_reruns(data, done, {decoded(k): decoded(v) for k, v in statuses.items()}),
            rerun_done=taken,
            opened_at=_float(data.get("opened")),
            earlier_episodes=sum(1 for at in earlier if at >= began - EPISODE_WINDOW_SECONDS),
            last_episode=max(earlier, default=None),
        )


def _state(raw: str) -> IncidentState:
    match raw:
        case "single" | "open" | "resolved":
            return raw
    return "single"


def _run(raw: str) -> RunEntry:
    execution_id, account, at = [*raw.split("\t"), "", "", "0"][:3]
    return RunEntry(execution_id, account, float(at or 0))


def _batches(raw: dict[str, str]) -> dict[int, Batch]:
    found: dict[int, Batch] = {}
    for name, value in raw.items():
        if name.startswith("b") and name[1:].isdigit():
            index = int(name[1:])
            posted = "" if value.startswith("claim:") else value
            found[index] = Batch(posted, int(raw.get(f"n{index}", "0")))
    return found


def _snooze(raw: dict[str, str]) -> Snooze | None:
    if "until" not in raw:
        return None
    return Snooze(float(raw["until"]), raw.get("by", ""), int(raw.get("held", "0")))


def _reruns(data: dict[str, str], done: dict[str, str], statuses: dict[str, str]) -> Reruns | None:
    if "rerun_at" not in data:
        return None
    started = [new for new in done.values() if not new.startswith(("claim:", "failed:"))]
    failed = sum(1 for new in done.values() if new.startswith("failed:"))
    return Reruns(
        by=data.get("rerun_by", ""),
        at=float(data["rerun_at"]),
        asked=int(data.get("rerun_asked", "0")),
        started=len(started),
        unconfirmed=len(done) - len(started) - failed,
        failed=failed,
        statuses=dict(Counter(statuses.get(new, "QUEUED").upper() for new in started)),
    )


def _float(value: str | None) -> float | None:
    return float(value) if value else None
