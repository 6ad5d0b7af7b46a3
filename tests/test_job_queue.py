"""saq's sweep on a real Redis: it puts back jobs of dead workers, never a job a live one just took."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from saq import Status
from saq.utils import now

from bot.jobs.kinds import FollowJob, LookupJob, Origin, PollJob, ReplyTarget, Target
from bot.jobs.queue import BotQueue, JobQueue
from bot.store.crypto import Cipher
from bot.store.keys import JOB_QUEUE
from tests.harness import EXEC_ID


def a_lookup(interaction: str) -> LookupJob:
    return LookupJob(
        origin=Origin(team_id="T1", user_id="U1"),
        reply=ReplyTarget(channel_id="C1", user_id="U1"),
        interaction=interaction,
        target=Target(execution_id=EXEC_ID),
    )


async def take_without_marking(queue: BotQueue) -> bytes:
    """A worker's first step: the job moves to the active list; marking it active comes next."""
    job_id = await queue.redis.lmove(queue.namespace("queued"), queue.namespace("active"), "LEFT", "RIGHT")
    assert job_id is not None
    return bytes(job_id)


async def sweep_now(queue: BotQueue) -> list[str]:
    """A sweep as the process whose turn it is (the lock of an earlier sweep lifted)."""
    await queue.redis.delete(queue.namespace("sweep"))
    return await queue.sweep(lock=1)


@pytest.fixture
async def jobs(redis_url: str, bot_key: str) -> AsyncIterator[JobQueue]:
    """The bot's queue on the test Redis, its sweep patient 0.5 s with a job taken but not marked."""
    client = aioredis.from_url(redis_url)
    queue = JobQueue(client, Cipher([bot_key]))
    queue.saq.taken_grace_seconds = 0.5
    yield queue
    await client.aclose()


async def test_a_job_taken_a_moment_ago_is_not_swept_but_one_whose_worker_died_taking_it_is(
    jobs: JobQueue,
) -> None:
    assert await jobs.enqueue(a_lookup("taken"))
    job_id = await take_without_marking(jobs.saq)
    # The sweep runs every second in every worker: it may land between a live worker's two steps.
    assert await sweep_now(jobs.saq) == []
    assert await jobs.saq.redis.lrange(jobs.saq.namespace("active"), 0, -1) == [job_id]
    await asyncio.sleep(0.6)
    # Still unmarked after the grace: its worker died between the steps. It runs again.
    assert await sweep_now(jobs.saq) == [job_id.decode()]
    assert await jobs.saq.redis.lrange(jobs.saq.namespace("active"), 0, -1) == []
    job = await jobs.saq.job(jobs.saq.job_key_from_id(job_id.decode()))
    assert job is not None and job.status == Status.QUEUED


async def test_a_marked_job_with_a_live_heartbeat_is_left_alone_and_a_stale_one_is_put_back(
    jobs: JobQueue,
) -> None:
    assert await jobs.enqueue(a_lookup("marked"))
    job_id = await take_without_marking(jobs.saq)
    job = await jobs.saq.job(jobs.saq.job_key_from_id(job_id.decode()))
    assert job is not None
    job.started = job.touched = now()  # what a worker records as it marks the job
    await job.update(status=Status.ACTIVE)
    assert await sweep_now(jobs.saq) == []
    # Its worker stops touching it (killed): past the heartbeat, the sweep puts it back.
    job.touched -= (job.heartbeat + 1) * 1000
    await jobs.saq.redis.set(job.id, jobs.saq.serialize(job))
    assert await sweep_now(jobs.saq) == [job_id.decode()]


async def test_while_another_process_holds_the_sweep_lock_a_sweep_does_nothing_and_forgets_nothing(
    jobs: JobQueue,
) -> None:
    other = BotQueue(jobs.saq.redis, JOB_QUEUE, taken_grace_seconds=0.5)
    assert await jobs.enqueue(a_lookup("locked"))
    job_id = await take_without_marking(jobs.saq)
    assert await sweep_now(jobs.saq) == []  # seen unmarked, from now
    assert await sweep_now(other) == []  # the other process's turn: it holds the lock a second
    await asyncio.sleep(0.6)
    assert await jobs.saq.sweep(lock=1) == []  # locked out: skipped, still remembering
    assert await sweep_now(jobs.saq) == [job_id.decode()]


async def test_a_finished_poll_or_follow_leaves_no_record_and_a_finished_lookup_keeps_it(
    jobs: JobQueue,
) -> None:
    # A follow polls every few seconds: finished polls kept for ten minutes were most of its memory.
    poll = PollJob(
        origin=Origin(team_id="T1", user_id="U1"),
        reply=ReplyTarget(channel_id="C1", user_id="U1"),
        interaction="follow-1:gen:3",
        follow_id="follow-1",
        generation="gen",
        seq=3,
    )
    follow = FollowJob(
        origin=poll.origin,
        reply=poll.reply,
        interaction="click-1",
        target=Target(execution_id=EXEC_ID),
        follow_id="follow-1",
    )
    assert await jobs.enqueue(poll)
    assert await jobs.enqueue(follow)
    assert await jobs.enqueue(a_lookup("finished"))
    for _ in range(3):
        job = await jobs.saq.dequeue()
        assert job is not None
        await jobs.saq.finish(job, Status.COMPLETE)
    assert await jobs.saq.job("poll:follow-1:gen:3") is None
    assert await jobs.saq.job("follow:click-1") is None
    # Other kinds keep theirs (`python -m bot queue` lists the failed ones).
    kept = await jobs.saq.job("lookup:finished")
    assert kept is not None and kept.status == Status.COMPLETE
