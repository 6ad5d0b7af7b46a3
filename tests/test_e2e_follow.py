"""Follow: the card updates itself until the run ends, then the person who asked is told.

Real processes throughout: the bot's web server (its standby worker runs polls when no worker process
is alive), `python -m bot worker` processes that are started and killed, a real Redis, and the
loopback Slack and Refold counting what they saw. Polls run every second here (FOLLOW_POLL_SECONDS=1).
"""

from __future__ import annotations

import contextlib
import json
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import redis as sync_redis

from bot.jobs.kinds import Origin, PollJob, ReplyTarget
from bot.render.buttons import encode_target
from tests.fakes.refold import FakeRefold, errored_doc, running_doc
from tests.fakes.slack import FakeSlack
from tests.harness import (
    API_KEY,
    EXEC_ID,
    BotServer,
    block_actions,
    connect,
    hold_slack_budget,
    queue_busy,
    release_slack_budget,
    wait_for_live_worker,
    wait_until_quiet,
)
from tests.redis_process import RedisProcess
from tests.test_e2e_worker import Workers, queue_job

VALUE = encode_target(EXEC_ID, "acme")


def actions_of(message: dict[str, Any]) -> list[str]:
    return [
        e["action_id"] for b in message.get("blocks") or [] if b["type"] == "actions" for e in b["elements"]
    ]


def prepare(refold: FakeRefold, redis_url: str, bot_key: str, progression: list[dict[str, Any]]) -> None:
    refold.api_keys.add(API_KEY)
    refold.add_execution(EXEC_ID, progression[0], linked_account_id="acme", progression=progression)
    connect(redis_url, bot_key)


def click_follow(bot: BotServer, slack: FakeSlack, key: str, **kwargs: Any) -> None:
    response = bot.interaction(block_actions("follow_execution", VALUE, slack.response_url(key), **kwargs))
    assert response.status_code == 200


def finished_replies(slack: FakeSlack) -> list[dict[str, Any]]:
    return [c.args for c in slack.calls_to("chat.postMessage") if "finished" in str(c.args.get("text"))]


def handled_follow_clicks(bot: BotServer) -> int:
    """Follow clicks the web process has finished with: each ends by logging one of these lines."""
    logs = bot.logs()
    return logs.count(f"following {EXEC_ID} (every") + logs.count("card already followed; this click")


def follow_records(redis_url: str) -> int:
    client = sync_redis.Redis.from_url(redis_url)
    try:
        return len(client.keys("refold-bot:follow:*"))
    finally:
        client.close()


@contextlib.contextmanager
def bot_on_its_own_redis(
    refold: FakeRefold, slack: FakeSlack, bot_key: str, tmp_path: Path, **env: str
) -> Iterator[tuple[RedisProcess, BotServer]]:
    """The bot's web process on a Redis of its own, which the test may kill and start again."""
    data = tmp_path / "redis"
    data.mkdir()
    server = RedisProcess(data).start()
    try:
        bot = BotServer(
            {
                "SLACK_API_URL": f"{slack.url}/api/",
                "REDIS_URL": server.url,
                "CREDENTIALS_KEY": bot_key,
                "REFOLD_API_URL": refold.url,
                **env,
            },
            tmp_path / "bot.log",
        ).start()
        try:
            yield server, bot
        finally:
            bot.stop()
    finally:
        server.stop()


# Rounds of Refold calls the shared-poll test looks at: as many as 12 s of polling makes (the first
# comes about 4 s after the clicks, then one every 2 s).
ROUNDS = 4


def nightly(done: int) -> dict[str, Any]:
    return running_doc(name="Nightly sync", done=done, total=4)


def test_a_followed_run_updates_its_card_until_it_ends_then_tells_the_thread(
    bot: BotServer, refold: FakeRefold, slack: FakeSlack, redis_url: str, bot_key: str
) -> None:
    prepare(
        refold, redis_url, bot_key, [nightly(1), nightly(2), nightly(3), errored_doc(name="Nightly sync")]
    )
    click_follow(bot, slack, "follow", ephemeral=False)
    slack.wait_for(lambda s: finished_replies(s), timeout=30)
    cards = slack.responses_to("follow")
    first, last = cards[0], cards[-1]
    assert actions_of(first) == ["refresh_execution", "unfollow_execution", "stop_execution"]
    assert "Following for <@U1>" in json.dumps(first["blocks"])
    # In between, the card moved on by itself: each change of the run, one update.
    progress = [json.dumps(c["blocks"]) for c in cards]
    assert any("50%" in p for p in progress) and any("75%" in p for p in progress)
    # The final card: no Refresh, no Follow, no "following"; the failing node's output is on it.
    assert actions_of(last) == ["rerun_execution"]
    assert "ERRORED" in last["text"] and "HubSpot token expired" in json.dumps(last["blocks"])
    assert "Following" not in json.dumps(last["blocks"])
    (reply,) = finished_replies(slack)
    assert reply["channel"] == "C1" and reply["thread_ts"] == "1.1"
    assert reply["text"].startswith("<@U1> *Nightly sync* finished: *ERRORED* after ")
    assert reply["text"].endswith("failing node: *Create contact*")
    # The last poll tells the thread, then ends the follow: its record goes right after the reply.
    slack.wait_for(lambda s: follow_records(redis_url) == 0, timeout=10)
    # Nothing after the end: with no poll queued, running or scheduled, nothing is left to reply.
    wait_until_quiet(redis_url)
    assert len(finished_replies(slack)) == 1 and slack.responses_to("follow") == cards


def redis_bytes_of_each_follow(redis_url: str) -> list[int]:
    """What Redis holds for each live follow: its record and its scheduled poll (MEMORY USAGE), and
    its entries in the live and per-workspace follow sets and the queue's schedule (member and score).
    Empty while a follow has no poll scheduled yet."""
    client = sync_redis.Redis.from_url(redis_url)
    try:
        scheduled = client.zrange("saq:refold-bot:incomplete", 0, -1)
        sizes = []
        for key in client.scan_iter("refold-bot:follow:*"):
            follow_id = key.decode().rsplit(":", 1)[1]
            polls = [m for m in scheduled if follow_id.encode() in m]
            if len(polls) != 1:
                return []  # between its start and its first poll's scheduling: asked again
            (poll,) = polls
            entries = [
                member
                for sorted_set in ["refold-bot:follows-live", *client.scan_iter("refold-bot:follows:*")]
                for member in client.zrange(sorted_set, 0, -1)
                if member.decode() == follow_id
            ]
            sizes.append(
                client.memory_usage(key, samples=0)
                + client.memory_usage(poll, samples=0)
                + sum(len(member) + 8 for member in [*entries, poll])
            )
        return sizes
    finally:
        client.close()


def test_a_followed_card_costs_redis_under_2_kb_while_it_is_followed(
    bot: BotServer, refold: FakeRefold, slack: FakeSlack, redis_url: str, bot_key: str
) -> None:
    prepare(refold, redis_url, bot_key, [running_doc(name="Nightly sync of every contact", done=1, total=9)])
    # As long as Slack's (https://hooks.slack.com/actions/T…/<digits>/<24 random>: about 84 characters).
    key = f"costly-{uuid.uuid4().hex}{uuid.uuid4().hex[:16]}"
    assert len(slack.response_url(key)) >= 84
    click_follow(bot, slack, key, ephemeral=False)
    slack.wait_for(lambda s: len(s.responses_to(key)) == 1, timeout=15)
    (size,) = slack.wait_for(lambda s: redis_bytes_of_each_follow(redis_url), timeout=15)
    assert size <= 2048, size


def test_ten_clicks_on_follow_make_one_follower(
    bot: BotServer, refold: FakeRefold, slack: FakeSlack, redis_url: str, bot_key: str
) -> None:
    prepare(refold, redis_url, bot_key, [nightly(1)])
    before = handled_follow_clicks(bot)
    for n in range(10):
        click_follow(bot, slack, f"click{n}", ephemeral=False, action_ts=f"1.{n + 10}")
    slack.wait_for(lambda s: any(s.responses_to(f"click{n}") for n in range(10)))
    # The web process runs each click itself (no worker): every one has ended once each has logged
    # either its follow or that it changed nothing.
    slack.wait_for(lambda s: handled_follow_clicks(bot) - before == 10)
    answered = [n for n in range(10) if slack.responses_to(f"click{n}")]
    assert len(answered) == 1, answered  # one click became the follow; nine changed nothing
    assert follow_records(redis_url) == 1
    refold.add_execution(EXEC_ID, errored_doc(name="Nightly sync"), linked_account_id="acme")
    slack.wait_for(lambda s: finished_replies(s), timeout=20)
    # A second follower, had there been one, would have ended too and replied before going quiet.
    slack.wait_for(lambda s: follow_records(redis_url) == 0, timeout=10)
    wait_until_quiet(redis_url)
    assert len(finished_replies(slack)) == 1


def test_three_messages_following_one_run_share_one_refold_call_per_poll(
    bot: BotServer, refold: FakeRefold, slack: FakeSlack, redis_url: str, bot_key: str
) -> None:
    prepare(refold, redis_url, bot_key, [nightly(1)])
    for n in range(3):
        click_follow(bot, slack, f"card{n}", ephemeral=False, message_ts=f"{n + 1}.1", action_ts=f"{n + 1}.2")
    slack.wait_for(lambda s: all(s.responses_to(f"card{n}") for n in range(3)))
    started = time.monotonic()

    def finished_rounds() -> list[list[float]] | None:
        """Refold calls since `started` in rounds, once ROUNDS of them are over: with no poll queued,
        running or due within the next half second, no call can still join the last round."""
        quiet_until = time.time() + 0.5
        if any(queue_busy(redis_url, scheduled_before=quiet_until)):
            return None
        with refold.lock:
            calls = sorted(r["at"] for r in refold.requests if r["endpoint"] == "get" and r["at"] > started)
        if time.time() >= quiet_until:
            return None  # read too late: a poll may have run meanwhile
        # Calls come in rounds (the polls of all three land on one shared grid); a round is one call.
        rounds: list[list[float]] = []
        for at in calls:
            if rounds and at - rounds[-1][-1] < 0.5:
                rounds[-1].append(at)
            else:
                rounds.append([at])
        return rounds if len(rounds) >= ROUNDS else None

    # Running runs are cached for 2 s, so with polls every second a round calls Refold every 2 s.
    rounds = slack.wait_for(lambda s: finished_rounds(), timeout=30)
    assert follow_records(redis_url) == 3
    assert len(rounds) >= 2, rounds
    assert all(len(r) == 1 for r in rounds), [len(r) for r in rounds]
    # End them, so no poll of this test runs on into the next one.
    refold.add_execution(EXEC_ID, errored_doc(name="Nightly sync"), linked_account_id="acme")
    slack.wait_for(lambda s: len(finished_replies(s)) == 3, timeout=20)


def test_a_follow_outlives_the_worker_polling_it(
    bot: BotServer, refold: FakeRefold, slack: FakeSlack, redis_url: str, bot_key: str, tmp_path: Path
) -> None:
    prepare(refold, redis_url, bot_key, [nightly(1)])
    workers = Workers(bot, tmp_path)
    first = workers.start()
    try:
        wait_for_live_worker(redis_url)
        click_follow(bot, slack, "kill", ephemeral=False)
        slack.wait_responses("kill")
        slack.wait_for(lambda s: "poll" in workers.log(0) or refold.count("get") >= 2, timeout=10)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        workers.start()
        refold.add_execution(EXEC_ID, errored_doc(name="Nightly sync"), linked_account_id="acme")
        slack.wait_for(lambda s: finished_replies(s), timeout=30)
        # A poll the killed worker held is swept back and runs again before the queue goes quiet.
        slack.wait_for(lambda s: follow_records(redis_url) == 0, timeout=10)
        wait_until_quiet(redis_url)
    finally:
        workers.stop_all()
    assert len(finished_replies(slack)) == 1
    assert actions_of(slack.responses_to("kill")[-1]) == ["rerun_execution"]
    assert "Traceback" not in workers.log(1)


def the_follow(redis_url: str) -> tuple[str, str]:
    """The one follow on record: (follow_id, generation)."""
    client = sync_redis.Redis.from_url(redis_url)
    try:
        (key,) = client.keys("refold-bot:follow:*")
        return key.decode().rsplit(":", 1)[1], client.hget(key, "gen").decode()
    finally:
        client.close()


def test_polls_of_one_follow_that_run_at_once_tell_the_thread_once(
    bot: BotServer, refold: FakeRefold, slack: FakeSlack, redis_url: str, bot_key: str, tmp_path: Path
) -> None:
    # A worker killed between scheduling a follow's next poll and saving its own leaves two polls of
    # one follow that can run at the same moment. Here Slack takes 3 s to accept the thread reply, and
    # two more polls are queued the moment the first poll to see the end starts telling the thread.
    prepare(refold, redis_url, bot_key, [nightly(1)])
    workers = Workers(bot, tmp_path)
    workers.start()
    try:
        wait_for_live_worker(redis_url)
        click_follow(bot, slack, "race", ephemeral=False)
        slack.wait_responses("race")
        follow_id, generation = the_follow(redis_url)
        slack.latency["chat.postMessage"] = 3.0
        refold.add_execution(EXEC_ID, errored_doc(name="Nightly sync"), linked_account_id="acme")
        slack.wait_for(lambda s: finished_replies(s), timeout=20)
        for seq in (1000, 1001):
            poll = PollJob(
                origin=Origin(team_id="T1", user_id="U1"),
                reply=ReplyTarget(channel_id="C1", user_id="U1", message_ts="1.1", ephemeral=False),
                interaction=f"{follow_id}:{generation[:12]}:{seq}",
                follow_id=follow_id,
                generation=generation,
                seq=seq,
            )
            assert queue_job(redis_url, bot_key, poll)
        slack.wait_for(lambda s: follow_records(redis_url) == 0, timeout=10)
        # Every poll has run (each of the three logs what it did) once none is queued or running.
        wait_until_quiet(redis_url)
    finally:
        workers.stop_all()
    # Every poll ran. At least one besides the teller saw the run end while the teller was still
    # telling the thread (one that stands back ends the follow, so a later one may find it over).
    log = workers.log(0)
    ended = log.count(f"followed run {EXEC_ID} ended ERRORED")
    assert ended >= 2 and ended + log.count("does nothing") == 3, log
    assert len(finished_replies(slack)) == 1
    assert "Traceback" not in workers.log(0)


def test_when_the_response_url_is_spent_updates_go_on_through_chat_update(
    bot: BotServer, refold: FakeRefold, slack: FakeSlack, redis_url: str, bot_key: str
) -> None:
    # Eight distinct states before the end: more changes than a response_url's five uses.
    states = [running_doc(name="Long run", done=d, total=10) for d in range(1, 9)]
    prepare(refold, redis_url, bot_key, [*states, errored_doc(name="Long run")])
    # Slack's rate limit meets one chat.update; the SDK waits out its Retry-After and sends it again.
    slack.fail("chat.update", "ratelimited", status=429, retry_after=1)
    click_follow(bot, slack, "spent", ephemeral=False)
    slack.wait_for(lambda s: finished_replies(s), timeout=60)
    via_url = slack.responses_to("spent")
    assert len(via_url) == 5 and all(r["_status"] == 200 for r in via_url)  # never a sixth use
    updates = slack.calls_to("chat.update")
    assert len(updates) >= 2  # the rate-limited one, sent again, and more
    assert all(u.args["channel"] == "C1" and u.args["ts"] == "1.1" for u in updates)
    final = updates[-1].args
    blocks = final["blocks"] if isinstance(final["blocks"], list) else json.loads(final["blocks"])
    assert actions_of({"blocks": blocks}) == ["rerun_execution"] and "ERRORED" in final["text"]


def test_changes_a_followed_card_would_wait_for_slacks_budget_to_show_are_skipped_and_the_end_shown(
    bot: BotServer, refold: FakeRefold, slack: FakeSlack, redis_url: str, bot_key: str
) -> None:
    states = [running_doc(name="Long run", done=d, total=10) for d in range(1, 9)]
    prepare(refold, redis_url, bot_key, [*states, errored_doc(name="Long run")])
    # Slack holds the workspace's chat.update (a long Retry-After) through the run's last changes and
    # its end, once the card's five response_url uses are spent: nothing that would go by chat.update
    # waits for it, the final card included (a minute at most); later polls try again.
    hold_slack_budget(redis_url, "chat.update", 600)
    click_follow(bot, slack, "skipped", ephemeral=False)
    slack.wait_for(lambda s: len(slack.responses_to("skipped")) == 5, timeout=40)
    slack.wait_for(
        lambda s: "final card is not shown yet; the next poll tries again" in bot.logs(), timeout=60
    )
    assert "a later poll shows it" in bot.logs()  # the changes before the end
    assert not slack.calls_to("chat.update") and not finished_replies(slack)
    # Slack's budget back: the next poll shows the end, once, and the person is told, once.
    released_at = time.time()
    release_slack_budget(redis_url, "chat.update")
    slack.wait_for(lambda s: finished_replies(s), timeout=30)
    (update,) = slack.calls_to("chat.update")
    assert update.at >= released_at and "ERRORED" in update.args["text"]
    wait_until_quiet(redis_url)
    assert len(finished_replies(slack)) == 1 and len(slack.calls_to("chat.update")) == 1


def test_a_private_card_keeps_its_last_response_url_use_for_the_final_card(
    bot: BotServer, refold: FakeRefold, slack: FakeSlack, redis_url: str, bot_key: str
) -> None:
    states = [running_doc(name="Long run", done=d, total=10) for d in range(1, 9)]
    prepare(refold, redis_url, bot_key, [*states, errored_doc(name="Long run")])
    click_follow(bot, slack, "private", ephemeral=True)
    slack.wait_for(
        lambda s: any(c.args.get("channel", "").startswith("D") for c in s.calls_to("chat.postMessage")),
        timeout=60,
    )
    cards = slack.responses_to("private")
    assert len(cards) == 5 and all(r["_status"] == 200 for r in cards)
    assert "ERRORED" in cards[-1]["text"] and actions_of(cards[-1]) == ["rerun_execution", "share_execution"]
    assert not slack.calls_to("chat.update")  # an ephemeral message can't be changed that way
    (dm,) = [c.args for c in slack.calls_to("chat.postMessage") if c.args.get("channel", "").startswith("D")]
    assert "*Long run* finished: *ERRORED*" in dm["text"]
    assert [c.args["users"] for c in slack.calls_to("conversations.open")] == ["U1"]


def test_unfollow_stops_at_once(
    bot: BotServer, refold: FakeRefold, slack: FakeSlack, redis_url: str, bot_key: str
) -> None:
    prepare(refold, redis_url, bot_key, [nightly(1)])
    click_follow(bot, slack, "f", ephemeral=False)
    (followed,) = slack.wait_responses("f")
    # The follow's next poll is on the queue (scheduled just after the card was shown).
    slack.wait_for(lambda s: any(queue_busy(redis_url)))
    unfollow = next(
        e
        for b in followed["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] == "unfollow_execution"
    )
    bot.interaction(
        block_actions(
            "unfollow_execution", unfollow["value"], slack.response_url("u"), ephemeral=False, action_ts="1.9"
        )
    )
    (card,) = slack.wait_responses("u")
    assert actions_of(card) == ["refresh_execution", "follow_execution", "stop_execution"]
    assert follow_records(redis_url) == 0
    seen = len(slack.responses_to("f"))
    refold.add_execution(EXEC_ID, errored_doc(name="Nightly sync"), linked_account_id="acme")
    # The poll already scheduled runs on the ended run; unfollowed, it must do nothing and stop the chain.
    wait_until_quiet(redis_url)
    assert (
        len(slack.responses_to("f")) == seen
        and not finished_replies(slack)
        and not slack.calls_to("chat.update")
    )


def test_follow_from_the_command_and_list_what_is_followed(
    bot: BotServer, refold: FakeRefold, slack: FakeSlack, redis_url: str, bot_key: str
) -> None:
    prepare(refold, redis_url, bot_key, [nightly(1)])
    assert bot.command(f"{EXEC_ID} follow", slack.response_url("cmd")).status_code == 200
    (card,) = slack.wait_responses("cmd")
    assert card["response_type"] == "ephemeral" and "unfollow_execution" in actions_of(card)
    bot.command("following", slack.response_url("list"))
    (listing,) = slack.wait_responses("list")
    assert f"`{EXEC_ID}` *Nightly sync* · RUNNING for <@U1> in <#C1>" in listing["text"]
    refold.add_execution(EXEC_ID, errored_doc(name="Nightly sync"), linked_account_id="acme")
    slack.wait_for(
        lambda s: [c for c in s.calls_to("chat.postMessage") if c.args.get("channel") == "D1"], timeout=20
    )
    # The follow ends just after its reply is sent (so a reply that fails can still be retried).
    slack.wait_for(lambda s: follow_records(redis_url) == 0, timeout=10)
    bot.command("following", slack.response_url("list2"))
    (empty,) = slack.wait_responses("list2")
    assert "No runs are being followed" in empty["text"]


def test_following_gives_up_after_follow_max_seconds_with_a_note(
    bot: BotServer, refold: FakeRefold, slack: FakeSlack, redis_url: str, bot_key: str, tmp_path: Path
) -> None:
    prepare(refold, redis_url, bot_key, [nightly(1)])
    workers = Workers(bot, tmp_path)
    workers.start(FOLLOW_MAX_SECONDS="3")
    try:
        wait_for_live_worker(redis_url)
        click_follow(bot, slack, "max", ephemeral=False)
        slack.wait_for(lambda s: "Stopped following after" in json.dumps(s.responses_to("max")), timeout=20)
    finally:
        workers.stop_all()
    last = slack.responses_to("max")[-1]
    assert "Stopped following after 3.0 s: press Refresh" in json.dumps(last["blocks"])
    assert actions_of(last) == ["refresh_execution", "follow_execution", "stop_execution"]
    assert follow_records(redis_url) == 0


def test_a_follow_survives_a_redis_restart(
    refold: FakeRefold, slack: FakeSlack, redis_url: str, bot_key: str, tmp_path: Path
) -> None:
    # `redis_url` empties the shared Redis: no follow of another test can answer in this one.
    with bot_on_its_own_redis(refold, slack, bot_key, tmp_path, FOLLOW_POLL_SECONDS="1") as (server, bot):
        workers = Workers(bot, tmp_path)
        try:
            workers.start()
            prepare(refold, server.url, bot_key, [nightly(1)])
            wait_for_live_worker(server.url)
            click_follow(bot, slack, "restart", ephemeral=False)
            slack.wait_responses("restart")
            server.kill()  # appendfsync always: what Redis acknowledged is on disk
            server.start()
            refold.add_execution(EXEC_ID, errored_doc(name="Nightly sync"), linked_account_id="acme")
            slack.wait_for(lambda s: finished_replies(s), timeout=40)
            slack.wait_for(lambda s: follow_records(server.url) == 0, timeout=10)
            wait_until_quiet(server.url)
        finally:
            workers.stop_all()
    assert len(finished_replies(slack)) == 1
    assert "Traceback" not in bot.logs()


def test_a_follow_asked_for_while_redis_restarts_is_shown_and_followed_to_the_end(
    refold: FakeRefold, slack: FakeSlack, bot_key: str, tmp_path: Path
) -> None:
    with bot_on_its_own_redis(refold, slack, bot_key, tmp_path, FOLLOW_POLL_SECONDS="1") as (server, bot):
        prepare(refold, server.url, bot_key, [nightly(1), nightly(2), errored_doc(name="Nightly sync")])
        server.kill()
        response = bot.command(f"{EXEC_ID} follow", slack.response_url("down"))
        assert response.status_code == 200
        time.sleep(2.0)
        server.start()
        slack.wait_for(lambda s: finished_replies(s), timeout=40)
    cards = slack.responses_to("down")
    assert cards and "Following for <@U1>" in json.dumps(cards[0]["blocks"])
    assert len(finished_replies(slack)) == 1
    assert "Traceback" not in bot.logs()


def test_a_follow_whose_redis_dies_while_refold_answers_tells_the_person_why(
    refold: FakeRefold, slack: FakeSlack, bot_key: str, tmp_path: Path
) -> None:
    # No worker: the web process runs the follow itself. Redis dies while Refold is answering, so
    # the run is fetched but its follow cannot be recorded (the chaos soak's one silent follow).
    with bot_on_its_own_redis(refold, slack, bot_key, tmp_path) as (server, bot):
        prepare(refold, server.url, bot_key, [nightly(1)])
        refold.latency = 1.5
        assert bot.command(f"{EXEC_ID} follow", slack.response_url("dies")).status_code == 200
        slack.wait_for(lambda s: refold.count("get") == 1)
        server.kill()
        replies = slack.wait_for(lambda s: s.responses_to("dies"), timeout=15)
    assert [r["text"] for r in replies] == [
        ":floppy_disk: The bot's storage (Redis) is not answering right now. Try again in a moment."
    ]
    assert "follow job gave up: Redis is unavailable" in bot.logs()
    assert "Traceback" not in bot.logs()
