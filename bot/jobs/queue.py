"""The job queue: saq on the bot's Redis, with each job's payload sealed by the bot's MultiFernet.

saq keeps the job's bookkeeping (status, attempts, schedule) readable for `python -m bot queue` and
its monitor; the payload (reply targets, response_urls, arguments) is one Fernet token inside it.
A job's saq key is its kind and interaction, so the same interaction queued twice runs once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis.asyncio as aioredis
from cryptography.fernet import InvalidToken
from pydantic import ValidationError
from saq import Job, Status
from saq.queue.redis import RedisQueue

from bot.jobs.kinds import AnyJob, dump_job, load_job
from bot.store import keys
from bot.store.crypto import Cipher
from bot.store.redis import redis_errors

RUN = "run"  # the one saq function: it opens the sealed job and hands it to its handler
# A job's own attempts. Refold calls inside also retry (stamina); these cover longer outages.
ATTEMPTS = 3
RETRY_DELAY_SECONDS = 1.0
RETRY_BACKOFF_MAX_SECONDS = 8.0
# A job runs at most this long (a Refold retry budget of 15 s, then the reply).
TIMEOUT_SECONDS = 40
# A running job touches its record this often; one untouched for HEARTBEAT_SECONDS belonged to a
# dead worker, and the next sweep puts it back in the queue.
HEARTBEAT_SECONDS = 4
PULSE_SECONDS = 1.0
# saq's sweep tries to abort a stuck job before retrying it and waits this long for its worker to
# confirm; a dead worker never does, so waiting saq's default 5 s only delays the retry.
SWEEP_ABORT_WAIT_SECONDS = 0.5
RESULT_TTL_SECONDS = 600
ALIVE_CHECK_SECONDS = 1.0


class BotQueue(RedisQueue):
    async def sweep(self, lock: int = 60, abort: float = SWEEP_ABORT_WAIT_SECONDS) -> list[str]:
        return await super().sweep(lock, abort=min(abort, SWEEP_ABORT_WAIT_SECONDS))

    async def notify(self, job: Job) -> None:
        """No status broadcast: nothing in the bot waits on a job's status, and each one costs a
        PUBLISH per state change (two per job; a fifth of the worker's Redis round trips)."""


class UnreadableJob(Exception):
    """A queued payload that this process cannot open (another key, or corrupt)."""


@dataclass(frozen=True)
class QueueStats:
    queued: int
    active: int
    scheduled: int
    failed: int
    workers: list[str]


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

    async def enqueue(self, job: AnyJob, *, delay_seconds: float = 0.0) -> bool:
        """Queue a job (after `delay_seconds`). False: the same interaction is already queued."""
        scheduled = int(time.time() + delay_seconds) if delay_seconds > 0 else 0
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
                    ttl=RESULT_TTL_SECONDS,
                    scheduled=scheduled,
                )
            )
        return queued is not None

    async def worker_alive(self) -> bool:
        """Is any worker reporting in? Asked at most once a second, so dispatch stays cheap."""
        now = time.monotonic()
        if now - self._alive_checked_at >= ALIVE_CHECK_SECONDS:
            self._alive_checked_at = now
            async with redis_errors():
                info = await self.saq.info()
            self._alive_until = now + ALIVE_CHECK_SECONDS if info["workers"] else 0.0
        return now < self._alive_until

    async def stats(self) -> QueueStats:
        async with redis_errors():
            info = await self.saq.info()
            failed = 0
            async for _ in self.saq.iter_jobs(statuses=[Status.FAILED]):
                failed += 1
        return QueueStats(
            queued=info["queued"],
            active=info["active"],
            scheduled=info["scheduled"],
            failed=failed,
            workers=sorted(info["workers"]),
        )
