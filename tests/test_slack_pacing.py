"""Every Slack Web API call the bot's clients make is paced across processes, and a 429 is waited out
and retried rather than dropped. Real Redis, the loopback Slack enforcing Slack's published limits."""

from __future__ import annotations

import redis.asyncio as aioredis

from bot.slack.clients import CountingWebClient
from bot.store.slack_pacer import SlackPacer
from tests.fakes.slack import FakeSlack
from tests.harness import BOT_TOKEN


def client_for(slack: FakeSlack, redis: aioredis.Redis) -> CountingWebClient:
    """One process's client: its own pacer object over the shared Redis."""
    client = CountingWebClient(token=BOT_TOKEN, base_url=f"{slack.url}/api/")
    client.pacer = SlackPacer(redis)
    return client


async def test_a_burst_from_two_processes_into_one_channel_all_arrives_in_order_and_none_is_refused(
    slack: FakeSlack, redis_url: str
) -> None:
    slack.enforce_limits()
    redis = aioredis.from_url(redis_url)
    try:
        first, second = client_for(slack, redis), client_for(slack, redis)
        for index in range(6):
            await (first if index % 2 else second).chat_postMessage(channel="C1", text=f"message {index}")
        assert [m.text for m in slack.channel_messages("C1")] == [f"message {i}" for i in range(6)]
        assert slack.refused == []
        # Budgets are named after a hash of the token, never the token.
        names = [key.decode() async for key in redis.scan_iter(match="*")]
        assert names and not any(BOT_TOKEN in name for name in names)
    finally:
        await redis.aclose()


async def test_a_call_slack_answers_429_is_retried_after_retry_after_and_arrives(
    slack: FakeSlack, redis_url: str
) -> None:
    slack.fail("chat.postMessage", "ratelimited", status=429, retry_after=1, times=2)
    redis = aioredis.from_url(redis_url)
    try:
        client = client_for(slack, redis)
        answer = await client.chat_postMessage(channel="C1", text="after the wait")
        assert answer["ok"]
        assert [m.text for m in slack.channel_messages("C1")] == ["after the wait"]
        assert [c.status for c in slack.calls_to("chat.postMessage")] == [429, 429, 200]
    finally:
        await redis.aclose()
