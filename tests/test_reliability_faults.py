"""Faults injected end to end: the real server, the loopback fakes, real Redis processes.

Every fault must produce a clear reply that names what happened and what to try, with the ack on
time and the server still serving afterwards. Counts per class are summarised in docs/reliability.md.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr

from bot.refold.credentials import AuthKind
from bot.store.credentials import CredentialStore, Scope, StoredCredentials
from bot.store.crypto import Cipher
from tests.fakes.refold import FakeRefold, Fault, errored_doc
from tests.fakes.slack import FakeSlack
from tests.harness import API_KEY, EXEC_ID, BotServer, connect, free_port, lookup_answer, message_shortcut
from tests.redis_process import RedisProcess

REQUEST_ID = "req-7f3a"
ACK_DEADLINE = 3.0  # Slack's


def ask(bot: BotServer, slack: FakeSlack, key: str, text: str = EXEC_ID) -> tuple[float, dict]:
    started = time.monotonic()
    ack = bot.command(text, slack.response_url(key))
    ack_seconds = time.monotonic() - started
    assert ack.status_code == 200
    return ack_seconds, lookup_answer(slack, key, timeout=20)


REFOLD_FAULTS = {
    "http_500": (
        Fault(status=500, body=json.dumps({"message": "boom", "request_id": REQUEST_ID}), times=10),
        ["HTTP 500", REQUEST_ID, "Try again"],
    ),
    "http_502": (
        Fault(
            status=502, body="<html><title>502 Bad Gateway</title></html>", content_type="text/html", times=10
        ),
        ["HTTP 502", "502 Bad Gateway", "Try again"],
    ),
    "http_503": (
        Fault(status=503, body=json.dumps({"message": "maintenance", "request_id": REQUEST_ID}), times=10),
        ["HTTP 503", REQUEST_ID, "Try again"],
    ),
    "http_504": (Fault(status=504, body="", times=10), ["HTTP 504", "Try again"]),
    "storm_429": (
        Fault(status=429, body=json.dumps({"message": "slow down", "request_id": REQUEST_ID}), times=100),
        ["rate limit", REQUEST_ID, "Try again in a few seconds"],
    ),
    "non_json_200": (
        Fault(status=200, body="definitely not json", content_type="text/plain"),
        ["not JSON", "Try again"],
    ),
    "truncated_json_200": (
        Fault(status=200, body='{"name": "Sync", "nodes": [{"node_'),
        ["not JSON", "Try again"],
    ),
    "html_200": (
        Fault(status=200, body="<html><body>Login</body></html>", content_type="text/html"),
        ["not JSON", "Try again"],
    ),
    "empty_200": (Fault(status=200, body=""), ["empty body", "Try again"]),
    "wrong_shape_200": (
        Fault(status=200, body=json.dumps({"nodes": "all of them", "status": {"a": 1}})),
        ["unexpected shape", "Try again"],
    ),
    "slow_200": (
        Fault(status=200, body=json.dumps(errored_doc()), delay=2.5, times=10),
        ["could not be reached", "Try again"],
    ),
}


@pytest.mark.parametrize("fault_name", list(REFOLD_FAULTS))
def test_refold_faults_get_a_clear_reply(
    fault_name: str, bot: BotServer, refold: FakeRefold, slack: FakeSlack, redis_url: str, bot_key: str
) -> None:
    fault, phrases = REFOLD_FAULTS[fault_name]
    refold.api_keys.add(API_KEY)
    refold.add_execution(EXEC_ID, errored_doc(), linked_account_id="acme")
    connect(redis_url, bot_key)
    refold.inject(Fault(**vars(fault)))
    ack_seconds, reply = ask(bot, slack, fault_name)
    assert ack_seconds < ACK_DEADLINE
    for phrase in phrases:
        assert phrase in reply["text"], (phrase, reply["text"])
    assert "Traceback" not in reply["text"]
    # ...and the server is still fine afterwards.
    refold.faults.clear()
    _, after = ask(bot, slack, fault_name + "_after")
    assert "blocks" in after


def test_refold_connection_refused(
    bot: BotServer, refold: FakeRefold, slack: FakeSlack, redis_url: str, bot_key: str
) -> None:
    async def point_at_a_closed_port() -> None:
        client = aioredis.from_url(redis_url)
        record = StoredCredentials(
            kind=AuthKind.API_KEY,
            secret=SecretStr(API_KEY),
            linked_account_id="acme",
            base_url=f"http://127.0.0.1:{free_port()}",
            connected_at=datetime.now(UTC),
        )
        await CredentialStore(client, Cipher([bot_key])).save(Scope.TEAM, "T1", record)
        await client.aclose()

    asyncio.run(point_at_a_closed_port())
    ack_seconds, reply = ask(bot, slack, "refused")
    assert ack_seconds < ACK_DEADLINE
    assert "could not be reached" in reply["text"] and "Try again" in reply["text"]


# --- Slack faults -------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [404, 500])
def test_response_url_failure_falls_back_to_a_bot_message(
    status: int, bot: BotServer, refold: FakeRefold, slack: FakeSlack, redis_url: str, bot_key: str
) -> None:
    refold.api_keys.add(API_KEY)
    refold.add_execution(EXEC_ID, errored_doc(), linked_account_id="acme")
    connect(redis_url, bot_key)
    slack.response_url_status[f"dead{status}"] = status
    bot.command(EXEC_ID, slack.response_url(f"dead{status}"))
    (fallback,) = slack.wait_for(lambda s: s.calls_to("chat.postEphemeral"))
    assert fallback.args["channel"] == "C1" and fallback.args["user"] == "U1"
    assert "HubSpot token expired" in json.dumps(fallback.args["blocks"])


def test_response_url_and_fallback_both_failing_is_logged_not_silent(
    bot: BotServer, refold: FakeRefold, slack: FakeSlack
) -> None:
    slack.response_url_status["both"] = 404
    slack.fail("chat.postEphemeral", "channel_not_found")
    bot.command(EXEC_ID, slack.response_url("both"), team="T-none")
    slack.wait_for(lambda s: s.calls_to("chat.postEphemeral"))
    deadline = time.monotonic() + 5
    while "reply could not be delivered" not in bot.logs() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "reply could not be delivered (response_url failed; fallback: channel_not_found)" in bot.logs()


def alert_shortcut(slack: FakeSlack, key: str) -> dict:
    return message_shortcut(
        {"text": f"Workflow Errored: execution {EXEC_ID} linked_account_id: acme"}, slack.response_url(key)
    )


def test_slack_ratelimited_is_retried_after_retry_after(
    bot: BotServer, refold: FakeRefold, slack: FakeSlack, redis_url: str, bot_key: str
) -> None:
    refold.api_keys.add(API_KEY)
    refold.add_execution(EXEC_ID, errored_doc(), linked_account_id="acme")
    connect(redis_url, bot_key)
    slack.fail("chat.postMessage", "ratelimited", status=429, retry_after=1)
    bot.interaction(alert_shortcut(slack, "rl"))
    posts = slack.wait_for(
        lambda s: len(s.calls_to("chat.postMessage")) >= 2 and s.calls_to("chat.postMessage")
    )
    assert len(posts) == 2 and posts[1].args["thread_ts"] == "1700000000.000100"
    assert slack.responses_to("rl") == []  # no fallback was needed


@pytest.mark.parametrize("error", ["channel_not_found", "not_in_channel"])
def test_thread_post_refused_falls_back_to_ephemeral(
    error: str, bot: BotServer, refold: FakeRefold, slack: FakeSlack, redis_url: str, bot_key: str
) -> None:
    refold.api_keys.add(API_KEY)
    refold.add_execution(EXEC_ID, errored_doc(), linked_account_id="acme")
    connect(redis_url, bot_key)
    slack.fail("chat.postMessage", error)
    bot.interaction(alert_shortcut(slack, error))
    (reply,) = slack.wait_responses(error)
    assert reply["response_type"] == "ephemeral" and "HubSpot token expired" in json.dumps(reply["blocks"])


def test_msg_too_long_is_retried_smaller(
    bot: BotServer, refold: FakeRefold, slack: FakeSlack, redis_url: str, bot_key: str
) -> None:
    big = errored_doc()
    big["nodes"] = [
        dict(big["nodes"][1], node_name=f"Node {i}", latest_output={"e": "x" * 4000}) for i in range(400)
    ]
    refold.api_keys.add(API_KEY)
    refold.add_execution(EXEC_ID, big, linked_account_id="acme")
    connect(redis_url, bot_key)
    slack.fail("chat.postMessage", "msg_too_long")
    bot.interaction(alert_shortcut(slack, "long"))
    posts = slack.wait_for(
        lambda s: len(s.calls_to("chat.postMessage")) >= 2 and s.calls_to("chat.postMessage")
    )
    first, second = (json.dumps(p.args["blocks"]) for p in posts[:2])
    assert len(second) < len(first) / 2
    assert "more node" in second


# --- Redis faults ----------------------------------------------------------------------------------


@pytest.fixture
def redis_process(tmp_path):
    server = RedisProcess(tmp_path).start()
    yield server
    server.stop()


def test_redis_killed_then_restarted(
    redis_process: RedisProcess, refold: FakeRefold, slack: FakeSlack, bot_key: str, tmp_path
) -> None:
    refold.api_keys.add(API_KEY)
    refold.add_execution(EXEC_ID, errored_doc(), linked_account_id="acme")
    connect(redis_process.url, bot_key)
    bot = BotServer(
        {
            "SLACK_API_URL": f"{slack.url}/api/",
            "REDIS_URL": redis_process.url,
            "CREDENTIALS_KEY": bot_key,
            "REFOLD_API_URL": refold.url,
            "REDIS_TIMEOUT_SECONDS": "0.5",
            # With the 5 s in-process cache a lookup right after another even survives the outage;
            # without it every lookup meets the outage, which is what is tested here.
            "CREDENTIALS_CACHE_SECONDS": "0",
        },
        tmp_path / "bot.log",
    ).start()
    try:
        _, before = ask(bot, slack, "before")
        assert "blocks" in before
        refold.latency = 0.5
        for i in range(5):  # in flight while Redis dies
            bot.command(EXEC_ID, slack.response_url(f"inflight{i}"))
        redis_process.kill()
        refold.latency = 0
        ack_seconds, during = ask(bot, slack, "during")
        assert ack_seconds < ACK_DEADLINE
        assert "storage (Redis) is not answering" in during["text"] and "Try again" in during["text"]
        assert bot.http.get(f"{bot.url}/healthz").status_code == 503
        for i in range(5):
            reply = lookup_answer(slack, f"inflight{i}")
            assert "blocks" in reply or "Redis" in reply["text"]
        redis_process.start()
        back = time.monotonic()
        while True:
            bot.command(EXEC_ID, slack.response_url("probe"))
            reply = slack.wait_responses("probe", count=len(slack.responses_to("probe")) + 1)[-1]
            if "blocks" in reply:
                break
            assert time.monotonic() - back < 5, "service did not resume within 5 s of Redis returning"
            time.sleep(0.2)
        assert bot.http.get(f"{bot.url}/healthz").status_code == 200
        bot.command("status", slack.response_url("creds"))
        assert "is connected" in slack.wait_responses("creds")[0]["text"]  # no credential lost
    finally:
        bot.stop()
    assert "Traceback" not in bot.logs()
