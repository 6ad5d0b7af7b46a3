"""The daily digest through the real server, real workers and a real Redis: turned on in a route's
channel (its time zone from the admin's Slack profile), built from the day's alerts, posted exactly
once whatever the workers (one killed while Slack holds the post), a quiet day's one line or nothing,
and turned off."""

from __future__ import annotations

import json
import signal
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import redis as redis_sync

from tests.fakes.refold import FakeRefold
from tests.fakes.slack import FakeSlack, Message
from tests.harness import BotServer, wait_for_live_worker, wait_until_quiet
from tests.test_e2e_alerts import (
    CHANNEL,
    alerts_command,
    bring_forward,
    failing_with,
    new_id,
    turn_on,
    workflow_event,
)
from tests.test_e2e_unfurl_home import open_home
from tests.test_e2e_worker import Workers

INCOMPLETE = "saq:refold-bot:incomplete"


def digest_command(bot: BotServer, slack: FakeSlack, text: str, key: str, user: str = "U1") -> str:
    assert bot.command(f"digest {text}".strip(), slack.response_url(key), user=user).status_code == 200
    (reply,) = slack.wait_responses(key)
    return str(reply["text"])


def counted_errors(redis_url: str, route: str) -> int:
    client = redis_sync.Redis.from_url(redis_url)
    try:
        return sum(
            int(client.hget(k, "t:errored") or 0)
            for k in client.scan_iter(f"refold-bot:daily-counts:{route}:*")
            if not k.endswith(b":runs")
        )
    finally:
        client.close()


def digest_jobs(redis_url: str, route: str) -> list[str]:
    client = redis_sync.Redis.from_url(redis_url)
    try:
        return [m.decode() for m in client.zrange(INCOMPLETE, 0, -1) if f"digest:{route}:".encode() in m]
    finally:
        client.close()


def digests(slack: FakeSlack) -> list[Message]:
    return [m for m in slack.channel_messages(CHANNEL) if "*Daily digest*" in str(m.text)]


def deliver_failure(
    bot: BotServer, refold: FakeRefold, route: str, workflow: str, node: str, error: str, account: str
) -> None:
    execution_id = new_id()
    doc = failing_with({"error": error}, account, node=node)
    doc["name"] = workflow
    refold.add_execution(execution_id, doc, linked_account_id=account)
    accepted = bot.webhook(route, workflow_event(execution_id, name=workflow, account=account))
    assert accepted.json()["result"] == "accepted"


@pytest.mark.timeout(180)
def test_a_days_digest_counts_its_alerts_and_posts_once_though_its_worker_is_killed_mid_send(
    bot: BotServer, slack: FakeSlack, refold: FakeRefold, redis_url: str, bot_key: str, tmp_path: Path
) -> None:
    route = turn_on(bot, slack, refold, redis_url, bot_key)
    slack.zones["U1"] = "Asia/Tokyo"
    refused = digest_command(bot, slack, "on", "digest-u2", user="U2")
    assert "Only workspace admins and owners, and the people the connect form names as operators" in refused
    said = digest_command(bot, slack, "on", "digest-on")
    # No time or zone typed: 09:00 in the admin's own zone, from their Slack profile.
    assert (
        ":newspaper: daily digest at 09:00 Asia/Tokyo (one short line on a quiet day), set by <@U1>" in said
    )
    tokyo = datetime.now(ZoneInfo("Asia/Tokyo"))
    first = tokyo.date() if tokyo.hour < 9 else tokyo.date() + timedelta(days=1)
    assert f"The first is {first:%a %-d %b} at 09:00 (Asia/Tokyo)" in said
    assert digest_jobs(redis_url, route) and all(
        first.isoformat() in j for j in digest_jobs(redis_url, route)
    )
    # The day: one cause (a token expired) for three accounts, four runs; one other in another workflow.
    for account in ["acme", "globex", "initech", "acme"]:
        token = uuid.uuid4().hex
        deliver_failure(
            bot,
            refold,
            route,
            "Nightly sync",
            "Fetch contacts",
            f"401 Unauthorized: token {token} expired",
            account,
        )
    deliver_failure(bot, refold, route, "Weekly export", "Upload", "503 from the partner API", "umbrella")
    slack.wait_for(lambda s: counted_errors(redis_url, route) == 5, timeout=60)

    workers = Workers(bot, tmp_path)
    processes = [workers.start(), workers.start()]
    try:
        wait_for_live_worker(redis_url)
        # Slack takes its time to accept the digest; its worker dies meanwhile.
        slack.latency["chat.postMessage"] = 4.0
        bring_forward(redis_url, f"digest:{route}:")
        slack.wait_for(
            lambda s: [
                c for c in s.calls_to("chat.postMessage") if "Daily digest" in str(c.args.get("text"))
            ],
            timeout=30,
        )
        sender = next(i for i in (0, 1) if "sending the digest of" in workers.log(i))
        processes[sender].send_signal(signal.SIGKILL)
        processes[sender].wait(10)
        slack.latency.clear()
        other = 1 - sender
        # The job is swept back and runs again on the other worker, which does not send it again.
        slack.wait_for(lambda s: "it is not sent again" in workers.log(other), timeout=60)
        wait_until_quiet(redis_url, scheduled_before=time.time() + 2, timeout=30)
    finally:
        workers.stop_all()
    sent = [c for c in slack.calls_to("chat.postMessage") if "Daily digest" in str(c.args.get("text"))]
    assert len(sent) == 1
    (digest,) = slack.wait_for(lambda s: digests(s), timeout=10)
    shown = json.dumps([digest.text, digest.blocks], ensure_ascii=False)
    assert f"{first - timedelta(days=1):%a %-d %b} 09:00 to {first:%a %-d %b} 09:00 (Asia/Tokyo)" in shown
    assert "*5 runs errored* in 2 workflows, for 4 linked accounts" in shown
    assert "• *Nightly sync*: 4" in shown and "• *Weekly export*: 1" in shown
    assert (
        "*Nightly sync* at *Fetch contacts*: 4 runs, 3 linked accounts: *acme*, *globex*, *initech*" in shown
    )
    assert "*Weekly export* at *Upload*: 1 run, 1 linked account: *umbrella*" in shown
    assert "_No earlier day to compare with yet._" in shown  # the route is new today
    # The next day's digest is scheduled, once.
    (tomorrow,) = digest_jobs(redis_url, route)
    assert (first + timedelta(days=1)).isoformat() in tomorrow
    assert "Traceback" not in workers.log(0) + workers.log(1)


@pytest.mark.timeout(120)
def test_a_quiet_day_posts_one_line_or_nothing_with_quiet_skip_and_off_stops_the_digest(
    bot: BotServer, slack: FakeSlack, refold: FakeRefold, redis_url: str, bot_key: str
) -> None:
    route = turn_on(bot, slack, refold, redis_url, bot_key)
    said = digest_command(bot, slack, "on at 7:30 tz:america/new_york", "digest-on")
    assert ":newspaper: daily digest at 07:30 America/New_York (one short line on a quiet day)" in said
    assert ":newspaper: daily digest at 07:30 America/New_York" in alerts_command(bot, slack, "list", "list")
    home = json.dumps(open_home(bot, slack, "U1", f"EvDigest{uuid.uuid4().hex[:8]}"))
    assert ":newspaper: daily digest at 07:30 America/New_York (one short line on a quiet day)" in home
    bring_forward(redis_url, f"digest:{route}:")
    (quiet,) = slack.wait_for(lambda s: digests(s), timeout=30)
    assert "A quiet day: no runs errored." in str(quiet.text) and "(America/New_York)" in str(quiet.text)
    wait_until_quiet(redis_url, scheduled_before=time.time() + 3600)
    # Turned on again with quiet:skip: the jobs of the first setting stop, the new ones post nothing
    # on a quiet day, and today's digest is not sent twice.
    again = digest_command(bot, slack, "on at 7:30 tz:America/New_York quiet:skip", "digest-again")
    assert "(nothing on a quiet day)" in again
    bring_forward(redis_url, f"digest:{route}:")
    wait_until_quiet(redis_url, scheduled_before=time.time() + 3600)
    assert len(digests(slack)) == 1
    assert len(digest_jobs(redis_url, route)) == 1  # the new setting's next day
    assert (
        digest_command(bot, slack, "off", "digest-off")
        == ":white_check_mark: The daily digest is off in this channel."
    )
    bring_forward(redis_url, f"digest:{route}:")
    wait_until_quiet(redis_url)
    assert digest_jobs(redis_url, route) == [] and len(digests(slack)) == 1
    assert "nothing to turn off" in digest_command(bot, slack, "off", "digest-off-again")
    assert "There is no daily digest in this channel." in digest_command(bot, slack, "", "digest-show")


def test_a_digest_whose_next_job_went_missing_is_queued_again_by_the_upkeep(
    bot: BotServer, slack: FakeSlack, refold: FakeRefold, redis_url: str, bot_key: str
) -> None:
    route = turn_on(bot, slack, refold, redis_url, bot_key)
    digest_command(bot, slack, "on at 06:00 tz:UTC", "digest-on")
    (job,) = digest_jobs(redis_url, route)
    client = redis_sync.Redis.from_url(redis_url)
    try:
        # Lost: every attempt of the day before's job met Redis away before it could queue this one.
        client.zrem(INCOMPLETE, job)
        client.delete(job)
        assert digest_jobs(redis_url, route) == []
        # saq schedules the upkeep from every process; its slot is brought forward.
        slack.wait_for(lambda s: [m for m in client.zrange(INCOMPLETE, 0, -1) if b"cron:digest_upkeep" in m])
    finally:
        client.close()
    bring_forward(redis_url, "cron:digest_upkeep")
    assert slack.wait_for(lambda s: digest_jobs(redis_url, route) == [job] or None, timeout=20)
    # Nothing was posted for it: the job is the day's, at its time.
    assert digests(slack) == []
