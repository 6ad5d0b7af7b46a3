"""Call counters at the fake Refold: concurrent refreshes share one call; finished runs are cached."""

from __future__ import annotations

import json
import signal
from concurrent.futures import ThreadPoolExecutor

from tests.fakes.refold import FakeRefold, errored_doc, running_doc
from tests.fakes.slack import FakeSlack
from tests.harness import API_KEY, EXEC_ID, BotServer, block_actions, connect


def test_fifty_simultaneous_refreshes_make_one_refold_call(
    bot: BotServer, refold: FakeRefold, slack: FakeSlack, redis_url: str, bot_key: str
) -> None:
    refold.api_keys.add(API_KEY)
    refold.add_execution(EXEC_ID, running_doc(), linked_account_id="acme")
    refold.latency = 0.3
    connect(redis_url, bot_key)
    value = json.dumps({"e": EXEC_ID, "a": "acme"})
    with ThreadPoolExecutor(max_workers=50) as pool:
        acks = list(
            pool.map(
                lambda i: bot.interaction(
                    block_actions("refresh_execution", value, slack.response_url(f"p{i}"))
                ),
                range(50),
            )
        )
    assert all(a.status_code == 200 for a in acks)
    slack.wait_for(lambda s: all(s._responses_unlocked(f"p{i}") for i in range(50)), timeout=20)
    assert refold.count("get") == 1
    assert all("blocks" in slack.responses_to(f"p{i}")[0] for i in range(50))


def test_a_finished_execution_is_fetched_once(
    bot: BotServer, refold: FakeRefold, slack: FakeSlack, redis_url: str, bot_key: str
) -> None:
    refold.api_keys.add(API_KEY)
    refold.add_execution(EXEC_ID, errored_doc(), linked_account_id="acme")
    connect(redis_url, bot_key)
    for i in range(100):
        bot.command(EXEC_ID, slack.response_url(f"f{i}"))
    slack.wait_for(lambda s: all(s._responses_unlocked(f"f{i}") for i in range(100)), timeout=30)
    assert refold.count("get") == 1


def test_a_different_linked_account_is_not_served_from_the_cache(
    bot: BotServer, refold: FakeRefold, slack: FakeSlack, redis_url: str, bot_key: str
) -> None:
    refold.api_keys.add(API_KEY)
    refold.add_execution(EXEC_ID, errored_doc(), linked_account_id="acme")
    connect(redis_url, bot_key)
    bot.command(EXEC_ID, slack.response_url("x1"))
    assert "blocks" in slack.wait_responses("x1")[0]
    bot.command(f"{EXEC_ID} someone-else", slack.response_url("x2"))
    assert "no execution with that ID" in slack.wait_responses("x2")[0]["text"]
    assert refold.count("get") == 2


def test_sigterm_lets_in_flight_replies_finish(
    refold: FakeRefold, slack: FakeSlack, redis_url: str, bot_key: str, tmp_path
) -> None:
    refold.api_keys.add(API_KEY)
    refold.add_execution(EXEC_ID, errored_doc(), linked_account_id="acme")
    refold.latency = 0.8
    connect(redis_url, bot_key)
    server = BotServer(
        {
            "SLACK_API_URL": f"{slack.url}/api/",
            "REDIS_URL": redis_url,
            "CREDENTIALS_KEY": bot_key,
            "REFOLD_API_URL": refold.url,
        },
        tmp_path / "bot.log",
    ).start()
    assert server.command(EXEC_ID, slack.response_url("term")).status_code == 200
    # uvicorn shuts down gracefully, then re-raises the SIGTERM it caught, as a terminated process should.
    assert server.stop() == -signal.SIGTERM
    (reply,) = slack.responses_to("term")
    assert "blocks" in reply
    assert "shutting down: waiting for 1 in-flight replies" in server.logs()


def test_two_processes_share_one_refold_call(
    bot: BotServer, refold: FakeRefold, slack: FakeSlack, redis_url: str, bot_key: str, tmp_path
) -> None:
    refold.api_keys.add(API_KEY)
    refold.add_execution(EXEC_ID, running_doc(), linked_account_id="acme")
    refold.latency = 0.3
    connect(redis_url, bot_key)
    second = BotServer({k: v for k, v in bot.env.items() if k != "PORT"}, tmp_path / "second.log").start()
    try:
        value = json.dumps({"e": EXEC_ID, "a": "acme"})
        servers = [bot, second]
        with ThreadPoolExecutor(max_workers=50) as pool:
            list(
                pool.map(
                    lambda i: servers[i % 2].interaction(
                        block_actions("refresh_execution", value, slack.response_url(f"x{i}"))
                    ),
                    range(50),
                )
            )
        slack.wait_for(lambda s: all(s._responses_unlocked(f"x{i}") for i in range(50)), timeout=20)
    finally:
        second.stop()
    assert refold.count("get") == 1
    assert all("blocks" in slack.responses_to(f"x{i}")[0] for i in range(50))


def test_no_auth_test_per_request(bot: BotServer, refold: FakeRefold, slack: FakeSlack) -> None:
    for i in range(20):
        bot.command("help", slack.response_url(f"h{i}"))
    assert slack.calls_to("auth.test") == []  # done once, at the first request of the process
