"""`python -m bot worker`: the web process acks and queues; the worker looks up and answers."""

from __future__ import annotations

import signal
import time

import redis as sync_redis

from tests.fakes.refold import FakeRefold, errored_doc
from tests.fakes.slack import FakeSlack
from tests.harness import BotServer
from tests.test_e2e_slack import API_KEY, EXEC_ID, connect


def wait_until(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_worker_answers_queued_lookups_and_web_takes_over_when_it_stops(
    bot: BotServer, refold: FakeRefold, slack: FakeSlack, redis_url: str, bot_key: str, tmp_path
) -> None:
    refold.api_keys.add(API_KEY)
    refold.add_execution(EXEC_ID, errored_doc(), linked_account_id="acme")
    refold.add_execution("f" * 24, errored_doc(), linked_account_id="acme")
    connect(redis_url, bot_key)
    r = sync_redis.Redis.from_url(redis_url)
    worker, log = bot.start_worker(tmp_path / "worker.log")
    try:
        wait_until(lambda: r.exists("refold-bot:workers"))
        time.sleep(1.1)  # the web process re-checks for a live worker once a second
        web_calls_before = bot.logs().count("refold GET")
        bot.command(EXEC_ID, slack.response_url("w1"))
        (reply,) = slack.wait_responses("w1")
        assert "HubSpot token expired" in str(reply["blocks"])
        worker_log = (tmp_path / "worker.log").read_text()
        assert f"refold GET /api/v2/public/execution/{EXEC_ID}" in worker_log
        assert bot.logs().count("refold GET") == web_calls_before  # the web process made no Refold call
    finally:
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(20)
        log.close()
    assert code == 0
    assert not r.exists("refold-bot:workers")  # retired at once on a clean stop
    time.sleep(1.1)
    bot.command("f" * 24, slack.response_url("w2"))
    (reply,) = slack.wait_responses("w2")
    assert "blocks" in reply  # served by the web process itself
    assert r.llen("refold-bot:jobs") == 0


def test_jobs_left_by_a_dead_worker_are_taken_up_again(
    bot: BotServer, refold: FakeRefold, slack: FakeSlack, redis_url: str, bot_key: str, tmp_path
) -> None:
    import json

    refold.api_keys.add(API_KEY)
    refold.add_execution(EXEC_ID, errored_doc(), linked_account_id="acme")
    connect(redis_url, bot_key)
    r = sync_redis.Redis.from_url(redis_url)
    orphan = {
        "kind": "lookup",
        "team": "T1",
        "enterprise": None,
        "org_wide": False,
        "body": {"response_url": slack.response_url("orphan"), "channel_id": "C1", "user_id": "U1"},
        "args": {"execution_id": EXEC_ID, "linked_account_id": None},
    }
    from bot.store.crypto import Cipher

    sealed = Cipher([bot_key]).encrypt(json.dumps(orphan).encode())
    r.lpush("refold-bot:jobs:processing:deadbeef0000", sealed)  # its worker has no heartbeat
    worker, log = bot.start_worker(tmp_path / "worker.log")
    try:
        (reply,) = slack.wait_responses("orphan", timeout=15)
        assert "blocks" in reply
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(20)
        log.close()
    assert not r.exists("refold-bot:jobs:processing:deadbeef0000")


def test_queued_jobs_are_encrypted(redis_url: str, bot_key: str) -> None:
    import asyncio

    import redis.asyncio as aioredis

    from bot.jobs import JobQueue
    from bot.store.crypto import Cipher

    async def enqueue_and_read() -> tuple[bytes, dict | None]:
        client = aioredis.from_url(redis_url)
        queue = JobQueue(client, Cipher([bot_key]))
        await queue.enqueue(
            {"kind": "lookup", "body": {"response_url": "https://hooks.slack.com/secret-path"}}
        )
        raw = await client.lindex("refold-bot:jobs", 0)
        await client.aclose()
        return raw, queue.open(raw)

    raw, opened = asyncio.run(enqueue_and_read())
    assert b"secret-path" not in raw and b"lookup" not in raw
    assert opened is not None and opened["body"]["response_url"].endswith("secret-path")
