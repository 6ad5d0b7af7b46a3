"""`python -m bot worker` over saq: the web process acks and queues; workers look up and answer.

Real processes throughout: the bot's web server, one or two `python -m bot worker`, a real Redis,
and the loopback Slack and Refold fakes counting what they saw.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import redis as sync_redis

from bot.jobs.kinds import AnyJob, LookupJob, Origin, ReplyTarget, Target
from bot.jobs.queue import JobQueue
from bot.store.crypto import Cipher
from tests.conftest import run_cli
from tests.fakes.refold import FakeRefold, Fault, errored_doc
from tests.fakes.slack import FakeSlack
from tests.harness import (
    API_KEY,
    EXEC_ID,
    BotServer,
    connect,
    is_waiting_note,
    live_workers,
    lookup_answer,
    wait_for_live_worker,
    wait_until_quiet,
)


class Workers:
    """Worker processes started for one test, all stopped (or reaped) at its end."""

    def __init__(self, bot: BotServer, tmp_path: Path) -> None:
        self._bot = bot
        self._tmp = tmp_path
        self._started: list[tuple[subprocess.Popen[bytes], Any]] = []

    def start(self, **overrides: str) -> subprocess.Popen[bytes]:
        process, log = self._bot.start_worker(self._tmp / f"worker{len(self._started)}.log", **overrides)
        self._started.append((process, log))
        return process

    def log(self, index: int) -> str:
        return (self._tmp / f"worker{index}.log").read_text(errors="replace")

    def stop_all(self) -> None:
        for process, log in self._started:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(20)
            log.close()
        # The shared web process re-checks for live workers once a second: let it see none.
        time.sleep(1.1)


def prepare(refold: FakeRefold, redis_url: str, bot_key: str, *ids: str) -> None:
    refold.api_keys.add(API_KEY)
    for execution_id in ids or (EXEC_ID,):
        refold.add_execution(execution_id, errored_doc(), linked_account_id="acme")
    connect(redis_url, bot_key)


def queue_job(redis_url: str, bot_key: str, job: AnyJob, delay_seconds: float = 0.0) -> bool:
    async def enqueue() -> bool:
        import redis.asyncio as aioredis

        client = aioredis.from_url(redis_url)
        try:
            return await JobQueue(client, Cipher([bot_key])).enqueue(job, delay_seconds=delay_seconds)
        finally:
            await client.aclose()

    return asyncio.run(enqueue())


def lookup_job(slack: FakeSlack, name: str, interaction: str) -> LookupJob:
    return LookupJob(
        origin=Origin(team_id="T1", user_id="U1"),
        reply=ReplyTarget(response_url=slack.response_url(name), channel_id="C1", user_id="U1"),
        interaction=interaction,
        target=Target(execution_id=EXEC_ID),
    )


def test_worker_answers_queued_lookups_and_web_takes_over_when_it_stops(
    bot: BotServer, refold: FakeRefold, slack: FakeSlack, redis_url: str, bot_key: str, tmp_path
) -> None:
    prepare(refold, redis_url, bot_key, EXEC_ID, "f" * 24)
    workers = Workers(bot, tmp_path)
    worker = workers.start()
    try:
        wait_for_live_worker(redis_url)
        web_calls_before = bot.logs().count("refold GET")
        bot.command(EXEC_ID, slack.response_url("w1"))
        reply = lookup_answer(slack, "w1")
        assert "HubSpot token expired" in str(reply["blocks"])
        assert f"refold GET /api/v2/public/execution/{EXEC_ID}" in workers.log(0)
        assert bot.logs().count("refold GET") == web_calls_before  # the web process made no Refold call
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(20) == 0
    finally:
        workers.stop_all()
    assert live_workers(redis_url) == 0  # it left the live list on its own, not by expiry
    time.sleep(1.1)  # the web process's next look for a live worker
    bot.command("f" * 24, slack.response_url("w2"))
    reply = lookup_answer(slack, "w2")
    assert "blocks" in reply  # served by the web process itself
    assert "refold GET /api/v2/public/execution/ffffffffffffffffffffffff" in bot.logs()


def test_a_job_left_by_a_killed_worker_finishes_on_another_with_one_card(
    bot: BotServer, refold: FakeRefold, slack: FakeSlack, redis_url: str, bot_key: str, tmp_path
) -> None:
    prepare(refold, redis_url, bot_key)
    workers = Workers(bot, tmp_path)
    first = workers.start()
    try:
        wait_for_live_worker(redis_url)
        refold.latency = 30.0  # the first worker is mid-job, waiting on Refold, when it dies
        bot.command(EXEC_ID, slack.response_url("killed"))
        slack.wait_for(lambda s: refold.count("get") == 1)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        killed_at = time.monotonic()
        refold.latency = 0.0
        workers.start()
        reply = lookup_answer(slack, "killed", timeout=15)
        recovered_in = time.monotonic() - killed_at
        # Had the job been put back once more, it would be queued, running or waiting out a retry.
        wait_until_quiet(redis_url)
    finally:
        workers.stop_all()
    assert "HubSpot token expired" in str(reply["blocks"])
    # Exactly one card (the job started late, so a waiting note may come first and be replaced).
    assert [r for r in slack.responses_to("killed") if not is_waiting_note(r)] == [reply]
    assert refold.count("get") == 2  # the dead worker's call, then the second worker's
    # The operator sees why the job ran again, from whichever process swept it.
    swept = "put 1 job(s) back in the queue: the worker running them stopped touching them"
    assert swept in workers.log(1) + bot.logs()
    assert recovered_in < 10, recovered_in
    print(f"killed worker's job answered {recovered_in:.1f} s after the kill")


def test_a_scheduled_job_runs_at_its_time(
    bot: BotServer, refold: FakeRefold, slack: FakeSlack, redis_url: str, bot_key: str, tmp_path
) -> None:
    prepare(refold, redis_url, bot_key)
    workers = Workers(bot, tmp_path)
    workers.start()
    try:
        wait_for_live_worker(redis_url)
        queued_at = time.time()
        assert queue_job(redis_url, bot_key, lookup_job(slack, "later", "i-later"), delay_seconds=3)
        time.sleep(1.5)
        assert slack.responses_to("later") == []  # not before its time
        (reply,) = slack.wait_responses("later", timeout=10)
        answered_after = time.time() - queued_at
    finally:
        workers.stop_all()
    assert "blocks" in reply
    # saq schedules in whole seconds and promotes due jobs once a second.
    assert 2.0 <= answered_after <= 6.0, answered_after


def test_the_same_interaction_queued_twice_answers_once(
    bot: BotServer, refold: FakeRefold, slack: FakeSlack, redis_url: str, bot_key: str, tmp_path
) -> None:
    prepare(refold, redis_url, bot_key)
    job = lookup_job(slack, "twice", "i-twice")
    assert queue_job(redis_url, bot_key, job)
    assert not queue_job(redis_url, bot_key, job)  # the job key deduplicates while it waits
    workers = Workers(bot, tmp_path)
    workers.start()
    try:
        slack.wait_responses("twice", timeout=15)
        # saq stamps `queued` in whole milliseconds: compare at that precision.
        answered_at_ms = int(time.time() * 1000)
        # Queued again after it ran (a redelivery): the answer was recorded, so nothing is sent.
        deadline = time.monotonic() + 10
        while not queue_job(redis_url, bot_key, job):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        # saq marks the job complete in the same transaction that takes it off the active list.
        wait_until_quiet(redis_url, timeout=10)
        client = sync_redis.Redis.from_url(redis_url)
        record = json.loads(client.get("saq:job:refold-bot:lookup:i-twice"))
        client.close()
    finally:
        workers.stop_all()
    # The redelivered job ran to completion (after the first answer) and sent nothing.
    assert record["status"] == "complete" and record["queued"] >= answered_at_ms
    assert len(slack.responses_to("twice")) == 1


@pytest.mark.parametrize(
    ("failures", "calls", "answer"),
    [
        # Five 503s: more than the client's own three attempts, fewer than three jobs' worth: a card.
        (5, 6, "HubSpot token expired"),
        # Refold down throughout: three jobs' attempts of three calls each, then the user is told.
        (100, 9, "Refold had a problem answering (HTTP 503"),
    ],
    ids=["retried-to-a-card", "last-attempt-tells-the-user"],
)
def test_a_transient_refold_failure_is_retried_with_backoff(
    bot: BotServer,
    refold: FakeRefold,
    slack: FakeSlack,
    redis_url: str,
    bot_key: str,
    tmp_path,
    failures: int,
    calls: int,
    answer: str,
) -> None:
    prepare(refold, redis_url, bot_key)
    refold.inject(Fault(status=503, body='{"message": "maintenance"}', times=failures, endpoint="get"))
    workers = Workers(bot, tmp_path)
    workers.start()
    try:
        wait_for_live_worker(redis_url)
        bot.command(EXEC_ID, slack.response_url("flaky"))
        reply = lookup_answer(slack, "flaky", timeout=30)
    finally:
        workers.stop_all()
    assert answer in str(reply.get("blocks") or reply["text"])
    assert refold.count("get") == calls
    assert "met a transient failure (upstream)" in workers.log(0)


def test_queued_jobs_are_sealed(redis_url: str, bot_key: str) -> None:
    secret_url = "https://hooks.slack.com/commands/T1/secret-path"
    job = LookupJob(
        origin=Origin(team_id="T1"),
        reply=ReplyTarget(response_url=secret_url),
        interaction="i-sealed",
        target=Target(execution_id=EXEC_ID),
    )
    assert queue_job(redis_url, bot_key, job)
    client = sync_redis.Redis.from_url(redis_url)
    stored = b"".join(client.get(k) or b"" for k in client.keys("saq:job:refold-bot:*"))
    assert stored and b"secret-path" not in stored and EXEC_ID.encode() not in stored
    opened = JobQueue(client, Cipher([bot_key])).open(json.loads(stored)["kwargs"]["sealed"])
    assert opened == job


def test_queue_verb_prints_counts_and_workers(
    bot: BotServer, slack: FakeSlack, redis_url: str, bot_key: str, tmp_path
) -> None:
    assert queue_job(redis_url, bot_key, lookup_job(slack, "q1", "i-q1"), delay_seconds=600)
    # The web process's standby worker reports in every 2 s (this test's Redis was just emptied).
    slack.wait_for(lambda s: live_workers(redis_url, standby=True) == 1, timeout=10)
    env = {"REDIS_URL": redis_url, "CREDENTIALS_KEY": bot_key}
    before = run_cli("queue", env=env)
    assert before.returncode == 0, before.stderr
    assert before.stdout.splitlines() == [
        "queued: 0",
        "active: 0",
        "scheduled: 1",
        "failed: 0",
        "workers: 0",
        "web standby workers: 1",  # the web process's, which takes jobs while no worker is alive
    ]
    workers = Workers(bot, tmp_path)
    workers.start()
    try:
        wait_for_live_worker(redis_url)
        during = run_cli("queue", env=env)
    finally:
        workers.stop_all()
    lines = during.stdout.splitlines()
    assert lines[0] == "queued: 0" and lines[2] == "scheduled: 1"
    assert lines[4].startswith("workers: 1 (")


def test_a_transient_slack_failure_is_retried_and_answers_once(
    bot: BotServer, refold: FakeRefold, slack: FakeSlack, redis_url: str, bot_key: str, tmp_path
) -> None:
    prepare(refold, redis_url, bot_key)
    slack.response_url_faults["slack-down"].append(503)  # the response_url fails once...
    slack.fail("chat.postEphemeral", "internal_error", status=500)  # ...and so does the fallback
    workers = Workers(bot, tmp_path)
    workers.start()
    try:
        wait_for_live_worker(redis_url)
        bot.command(EXEC_ID, slack.response_url("slack-down"))
        slack.wait_for(lambda s: len(s.responses_to("slack-down")) >= 2, timeout=20)
        # A job that answered twice would do so before it leaves the queue (or its retry is scheduled).
        wait_until_quiet(redis_url)
    finally:
        workers.stop_all()
    posts = slack.responses_to("slack-down")
    assert [p["_status"] for p in posts] == [503, 200]
    assert "HubSpot token expired" in str(posts[1]["blocks"])
    assert "transient failure (slack)" in workers.log(0)


def test_sigterm_stops_taking_jobs_and_lets_the_running_one_finish(
    bot: BotServer, refold: FakeRefold, slack: FakeSlack, redis_url: str, bot_key: str, tmp_path
) -> None:
    prepare(refold, redis_url, bot_key)
    workers = Workers(bot, tmp_path)
    worker = workers.start(REFOLD_TIMEOUT_SECONDS="10")
    try:
        wait_for_live_worker(redis_url)
        refold.latency = 4.0  # the job outlasts the worker's moment of leaving the live list
        bot.command(EXEC_ID, slack.response_url("draining"))
        slack.wait_for(lambda s: refold.count("get") == 1)
        worker.send_signal(signal.SIGTERM)
        time.sleep(2.0)  # past that moment: it takes no more jobs, but still runs the one it has
        assert queue_job(redis_url, bot_key, lookup_job(slack, "after-stop", "i-after-stop"))
        assert worker.wait(20) == 0
    finally:
        refold.latency = 0.0
        workers.stop_all()
    # Answered before the worker exited: Refold's 4 s made it show a placeholder at 3 s, then the card.
    waiting, reply = slack.responses_to("draining")
    assert "Refold is taking longer than usual" in waiting["text"]
    assert reply["replace_original"] is True and "HubSpot token expired" in str(reply["blocks"])
    # The job queued after it stopped taking jobs was left for others: with no worker process left,
    # the web process's standby worker took it.
    assert workers.log(0).count("refold GET") == 1
    (late,) = slack.wait_responses("after-stop")
    assert "HubSpot token expired" in str(late["blocks"])
