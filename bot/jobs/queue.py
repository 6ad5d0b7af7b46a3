"""The job queue: saq on the bot's Redis, with each job's payload sealed by the bot's MultiFernet.

saq keeps the job's bookkeeping (status, attempts, schedule) readable for `python -m bot queue` and
its monitor; the payload (reply targets, response_urls, arguments) is one Fernet token inside it.
A job's saq key is its kind and interaction, so the same interaction queued twice runs once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import redis.asyncio as aioredis
from cryptography.fernet import InvalidToken
from pydantic import ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from saq import Job, Status
from saq.queue.redis import RedisQueue

from bot.jobs.kinds import AnyJob, dump_job, load_job
from bot.store import keys
from bot.store.crypto import Cipher
from bot.store.errors import StoreUnavailable
from bot.store.redis import redis_errors

log = logging.getLogger(__name__)

RUN = "run"  # the one saq function: it opens the sealed job and hands it to its handler
# saq's cron function that keeps every daily digest's next job queued (bot.slack.handlers.digest), and
# when it runs. saq keeps it scheduled for its next slot for good, under a key of its own.
DIGEST_UPKEEP = "digest_upkeep"
DIGEST_UPKEEP_CRON = "*/10 * * * *"
STANDING_JOB_KEYS = (f"cron:{DIGEST_UPKEEP}",)
# A job's own attempts. Refold calls inside also retry (stamina); these cover longer outages.
ATTEMPTS = 3
RETRY_DELAY_SECONDS = 1.0
RETRY_BACKOFF_MAX_SECONDS = 8.0
# A job runs at most this long: up to a minute in its key's line at the Refold rate limit, a Refold
# retry budget of 15 s, then the reply.
TIMEOUT_SECONDS = 100
# A running job touches its record this often; one untouched for HEARTBEAT_SECONDS belonged to a
# dead worker, and the next sweep puts it back in the queue.
HEARTBEAT_SECONDS = 4
PULSE_SECONDS = 1.0
# saq's sweep tries to abort a stuck job before retrying it and waits this long for its worker to
# confirm; a dead worker never does, so waiting saq's default 5 s only delays the retry.
SWEEP_ABORT_WAIT_SECONDS = 0.5
RESULT_TTL_SECONDS = 600
# A finished poll's record is dropped at once (saq's ttl -1) rather than kept for RESULT_TTL_SECONDS:
# a follow polls every few seconds, so ten minutes of finished polls were most of a follow's memory
# (120 records of about 1.2 kB at a 5 s interval); the job that starts a follow goes the same way
# (another 1.2 kB a follow for ten minutes). Nothing needs them: a poll run again after its worker
# died finds its sequence number already in the follow's record and does nothing, a follow started
# again finds its record, and a failed one is logged (`python -m bot queue` lists failed jobs of the
# other kinds only).
FORGOTTEN_WHEN_DONE = frozenset({"poll", "follow"})
ALIVE_CHECK_SECONDS = 1.0
# A web process runs a standby worker: it takes jobs (scheduled follow polls above all) only while no
# worker process is alive, so a deployment without workers still follows runs.
STANDBY_PREFIX = "standby-"
STANDBY_WAIT_SECONDS = 1.0
REDIS_AWAY_WAIT_SECONDS = 1.0


# A worker takes a job (moves it to the active list), then marks it active in a second step; saq's
# sweep puts back any job in the active list not marked active, so a sweep landing between the two
# steps runs a live job twice (tobymao/saq#124, #277). A job is left unmarked for good only when its
# worker died between them; the sweep puts one back once it has stayed unmarked this long.
TAKEN_GRACE_SECONDS = 5.0
# saq's own script, returning nil (not an empty list) when another process holds the sweep lock, so
# that a skipped sweep is not mistaken for an empty active list.
ACTIVE_JOBS_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 1 then
    return false
end
redis.call('SETEX', KEYS[1], ARGV[1], 1)
local id_jobs = {}
for i, v in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
    id_jobs[i] = {v, redis.call('GET', v)}
end
return id_jobs
"""


class BotQueue(RedisQueue):
    def __init__(
        self, redis: aioredis.Redis, name: str, *, taken_grace_seconds: float = TAKEN_GRACE_SECONDS
    ) -> None:
        super().__init__(redis, name=name)
        self.taken_grace_seconds = taken_grace_seconds
        self._active_jobs = redis.register_script(ACTIVE_JOBS_SCRIPT)
        # saq's sweep reads the active list through this; ours leaves out jobs taken a moment ago.
        self._cleanup_script = self._jobs_to_sweep  # type: ignore[assignment]
        # Each unmarked job this process's sweeps have seen, with the record as it was, since when.
        self._unmarked: dict[tuple[bytes, bytes], float] = {}

    async def sweep(self, lock: int = 60, abort: float = SWEEP_ABORT_WAIT_SECONDS) -> list[str]:
        swept = await super().sweep(lock, abort=min(abort, SWEEP_ABORT_WAIT_SECONDS))
        if swept:
            log.info(
                "put %d job(s) back in the queue: the worker running them stopped touching them "
                "(it died, or lost Redis): %s",
                len(swept),
                ", ".join(self.job_key_from_id(job_id) for job_id in swept),
            )
        return swept

    async def _jobs_to_sweep(
        self, keys: list[str], args: list[int], client: aioredis.Redis
    ) -> list[tuple[bytes, bytes | None]]:
        id_jobs = await self._active_jobs(keys=keys, args=args, client=client)
        if id_jobs is None:
            return []  # another process sweeps this round
        now = time.monotonic()
        unmarked: dict[tuple[bytes, bytes], float] = {}
        to_check: list[tuple[bytes, bytes | None]] = []
        for job_id, job_bytes in id_jobs:
            job = self.deserialize(job_bytes) if job_bytes else None
            if job is not None and job.status == Status.QUEUED:
                # The same bytes later: no worker has touched it (a retry would change them too).
                since = unmarked[(job_id, job_bytes)] = self._unmarked.get((job_id, job_bytes), now)
                if now - since < self.taken_grace_seconds:
                    continue
            to_check.append((job_id, job_bytes))
        self._unmarked = unmarked
        return to_check

    async def dequeue(self, timeout: float = 0.0, poll_interval: float = 0.0) -> Job | None:  # noqa: ASYNC109 - saq's signature
        try:
            return await super().dequeue(timeout, poll_interval)
        except (RedisConnectionError, RedisTimeoutError, OSError):
            # saq asks again at once, from every slot: while Redis is away, wait between asks instead.
            await asyncio.sleep(REDIS_AWAY_WAIT_SECONDS)
            return None

    async def notify(self, job: Job) -> None:
        """No status broadcast: nothing in the bot waits on a job's status, and each one costs a
        PUBLISH per state change (two per job; a fifth of the worker's Redis round trips)."""


class StandbyQueue(BotQueue):
    """The web process's view of the queue: it hands out jobs only while no worker process is alive.

    It never blocks waiting for a job (a blocked wait could take a job the moment a worker appears):
    it asks whether a worker is alive, then takes a job without waiting, or pauses.
    """

    def __init__(self, redis: aioredis.Redis, name: str, worker_alive: Callable[[], Awaitable[bool]]) -> None:
        super().__init__(redis, name)
        self._worker_alive = worker_alive

    async def dequeue(self, timeout: float = 0.0, poll_interval: float = 0.0) -> Job | None:  # noqa: ASYNC109 - saq's signature
        try:
            if not await self._worker_alive():
                job_id = await self.redis.lmove(self._queued, self._active, "LEFT", "RIGHT")
                if job_id is not None:
                    return await self._get_job_by_id(job_id)
        except (StoreUnavailable, RedisConnectionError, RedisTimeoutError, OSError):
            pass
        await asyncio.sleep(STANDBY_WAIT_SECONDS)
        return None


class UnreadableJob(Exception):
    """A queued payload that this process cannot open (another key, or corrupt)."""


@dataclass(frozen=True)
class QueueStats:
    queued: int
    active: int
    scheduled: int
    failed: int
    workers: list[str]  # worker processes
    standby: list[str]  # web processes' standby workers


@dataclass(frozen=True)
class Backlog:
    queued: int
    active: int
    oldest_seconds: float  # how long the next job has waited for a worker; 0 when none waits


class JobQueue:
    def __init__(self, redis: aioredis.Redis, cipher: Cipher) -> None:
        self._cipher = cipher
        self.saq = BotQueue(redis, name=keys.JOB_QUEUE)
        self._alive_until = 0.0
        self._alive_checked_at = 0.0

    def seal(self, job: AnyJob) -> str:
        return self._cipher.encrypt(dump_job(job)).decode()

    def open(self, sealed: str) -> AnyJob:
        try:
            return load_job(self._cipher.decrypt(sealed.encode()))
        except (InvalidToken, ValidationError, ValueError) as exc:
            raise UnreadableJob(type(exc).__name__) from None

    async def enqueue(self, job: AnyJob, *, delay_seconds: float = 0.0, at: float = 0.0) -> bool:
        """Queue a job (after `delay_seconds`, or at the epoch time `at`). False: the same interaction
        is already queued."""
        when = at or (time.time() + delay_seconds if delay_seconds > 0 else 0.0)
        scheduled = int(when) if when > 0 else 0
        async with redis_errors():
            queued = await self.saq.enqueue(
                Job(
                    function=RUN,
                    kwargs={"sealed": self.seal(job)},
                    key=f"{job.kind}:{job.interaction}",
                    timeout=TIMEOUT_SECONDS,
                    heartbeat=HEARTBEAT_SECONDS,
                    retries=ATTEMPTS,
                    retry_delay=RETRY_DELAY_SECONDS,
                    retry_backoff=RETRY_BACKOFF_MAX_SECONDS,
                    ttl=-1 if job.kind in FORGOTTEN_WHEN_DONE else RESULT_TTL_SECONDS,
                    scheduled=scheduled,
                )
            )
        return queued is not None

    async def worker_alive(self, *, fresh: bool = False) -> bool:
        """Is any worker process reporting in? Asked at most once a second (unless `fresh`), so
        dispatch stays cheap."""
        now = time.monotonic()
        if fresh or now - self._alive_checked_at >= ALIVE_CHECK_SECONDS:
            self._alive_checked_at = now
            # saq's own list of live workers (scores: report expiry, in ms), in one round trip: info()
            # would also count three job lists, and the standby workers ask this every second.
            async with redis_errors():
                live = await self.saq.redis.zrangebyscore(
                    self.saq.namespace("stats"), int(time.time() * 1000), "+inf"
                )
            workers = [m for m in live if f":{STANDBY_PREFIX}".encode() not in m]
            self._alive_until = now + ALIVE_CHECK_SECONDS if workers else 0.0
        return now < self._alive_until

    def standby(self) -> StandbyQueue:
        return StandbyQueue(self.saq.redis, keys.JOB_QUEUE, lambda: self.worker_alive(fresh=True))

    async def backlog(self) -> Backlog:
        """What a metrics scrape reports: three round trips, whatever the queue's length."""
        async with redis_errors():
            queued = await self.saq.count("queued")
            active = await self.saq.count("active")
            # saq queues at the right and takes from the left: the head is the longest waiting.
            head = await self.saq.redis.lindex(self.saq.namespace("queued"), 0)
            head_id = head.decode() if isinstance(head, bytes) else head
            job = await self.saq.job(self.saq.job_key_from_id(head_id)) if head_id else None
        oldest = 0.0
        if job is not None:
            # A scheduled job starts waiting at its time, not when it was queued.
            waiting_since = max(job.queued / 1000, float(job.scheduled))
            oldest = max(0.0, time.time() - waiting_since)
        return Backlog(queued, active, oldest)

    async def stats(self) -> QueueStats:
        async with redis_errors():
            info = await self.saq.info()
            failed = 0
            async for _ in self.saq.iter_jobs(statuses=[Status.FAILED]):
                failed += 1
            standing = [
                await self.saq.redis.zscore(self.saq.namespace("incomplete"), self.saq.job_id(key))
                for key in STANDING_JOB_KEYS
            ]
        return QueueStats(
            queued=info["queued"],
            active=info["active"],
            # Work waiting for its time; the standing cron job is always there.
            scheduled=info["scheduled"] - sum(1 for score in standing if score is not None and score > 0),
            failed=failed,
            workers=sorted(w for w in info["workers"] if not w.startswith(STANDBY_PREFIX)),
            standby=sorted(w for w in info["workers"] if w.startswith(STANDBY_PREFIX)),
        )
