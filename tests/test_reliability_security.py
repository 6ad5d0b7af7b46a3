"""Signatures, SSRF and the cross-process rate limit toward Refold, end to end."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode

import httpx

from tests.fakes.refold import FakeRefold, Fault, errored_doc
from tests.fakes.slack import FakeSlack
from tests.harness import (
    API_KEY,
    EXEC_ID,
    SIGNING_SECRET,
    BotServer,
    connect,
    connect_values,
    max_in_window,
    view_submission,
)


def test_every_bad_signature_is_rejected(bot: BotServer, refold: FakeRefold, slack: FakeSlack) -> None:
    body = urlencode(
        {
            "command": "/execution",
            "text": EXEC_ID,
            "team_id": "T1",
            "user_id": "U1",
            "response_url": slack.response_url("sig"),
            "trigger_id": "t",
        }
    )
    now = int(time.time())
    url = f"{bot.url}/slack/events"
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    attempts = {
        "wrong secret": lambda: bot.post_signed(body, secret="not-the-secret"),
        "secret with one char changed": lambda: bot.post_signed(body, secret=SIGNING_SECRET[:-1] + "x"),
        "replay 5 min 1 s old": lambda: bot.post_signed(body, timestamp=now - 301),
        "replay 1 hour old": lambda: bot.post_signed(body, timestamp=now - 3600),
        "timestamp 10 min ahead": lambda: bot.post_signed(body, timestamp=now + 600),
        "body altered after signing": lambda: bot.post_signed(body, tamper=body.replace(EXEC_ID, "0" * 24)),
        "body extended after signing": lambda: bot.post_signed(body, tamper=body + "&text=x"),
        "no signature headers": lambda: bot.http.post(url, content=body, headers=form),
        "empty signature": lambda: bot.http.post(
            url,
            content=body,
            headers={**form, "X-Slack-Request-Timestamp": str(now), "X-Slack-Signature": ""},
        ),
        "signature of another body": lambda: bot.http.post(
            url,
            content=body,
            headers={**form, "X-Slack-Request-Timestamp": str(now), "X-Slack-Signature": _sign("other", now)},
        ),
        "non-numeric timestamp": lambda: bot.http.post(
            url,
            content=body,
            headers={**form, "X-Slack-Request-Timestamp": "yesterday", "X-Slack-Signature": _sign(body, now)},
        ),
        "v0 prefix missing": lambda: bot.http.post(
            url,
            content=body,
            headers={
                **form,
                "X-Slack-Request-Timestamp": str(now),
                "X-Slack-Signature": _sign(body, now)[3:],
            },
        ),
    }
    statuses = {name: attempt().status_code for name, attempt in attempts.items()}
    rejected = [name for name, status in statuses.items() if status == 401]
    assert rejected == list(attempts), statuses  # 12 of 12
    # A refused request starts no work, so no event can mark that none was started: a short settle
    # gives any wrongly started lookup time to call Refold or answer.
    time.sleep(0.2)
    assert slack.responses_to("sig") == [] and sum(refold.calls.values()) == 0
    assert bot.post_signed(body).status_code == 200  # and a good one still passes


def _sign(body: str, timestamp: int) -> str:
    from slack_sdk.signature import SignatureVerifier

    return SignatureVerifier(SIGNING_SECRET).generate_signature(timestamp=str(timestamp), body=body)


def test_ssrf_base_urls_are_refused_before_any_request(
    bot: BotServer, refold: FakeRefold, slack: FakeSlack
) -> None:
    slack.admins.add("UADMIN")
    refold.api_keys.add(API_KEY)
    hostile = [
        "http://app.refold.ai",
        "https://169.254.169.254",
        "https://[::1]",
        "https://127.0.0.1",
        "https://app.refold.ai@10.0.0.1",
        "https://user:pw@app.refold.ai",
        "https://internal.example",
        "https://app.refold.ai.internal.example",
        "https://app.refold.ai:8443",
        "file:///etc/passwd",
        "gopher://app.refold.ai",
        "https://app.refold.ai/../admin",
    ]
    for url in hostile:
        answer = bot.interaction(view_submission(connect_values(API_KEY, base_url=url), user="UADMIN")).json()
        assert answer["response_action"] == "errors" and "base_url" in answer["errors"], url
    assert sum(refold.calls.values()) == 0


def test_a_redirect_to_an_internal_address_is_not_followed(
    bot: BotServer, refold: FakeRefold, slack: FakeSlack, redis_url: str, bot_key: str
) -> None:
    from tests.fakes.refold import FakeRefold as Internal

    internal = Internal().start()
    try:
        refold.api_keys.add(API_KEY)
        connect(redis_url, bot_key)
        location = f"{internal.url}/api/v2/public/execution/{EXEC_ID}"
        refold.inject(Fault(status=302, body="", headers={"Location": location}))
        bot.command(EXEC_ID, slack.response_url("redir"))
        reply = slack.wait_responses("redir")[0]
        assert "HTTP 302" in reply["text"] or "redirect" in reply["text"]
        assert sum(internal.calls.values()) == 0
    finally:
        internal.stop()


def test_a_burst_from_one_workspace_waits_its_turn_and_every_lookup_gets_its_card(
    bot: BotServer, refold: FakeRefold, slack: FakeSlack, redis_url: str, bot_key: str, tmp_path
) -> None:
    """200 lookups at once from one workspace (one Refold key), through two server processes: about
    17 s of Refold's rate limit. Each is answered with its card, never "busy"; those that wait more than
    3 s first show their place in line, which the card then replaces."""
    refold.api_keys.add(API_KEY)
    ids = [f"{i:024x}" for i in range(1, 201)]
    for eid in ids:
        refold.add_execution(eid, errored_doc(), linked_account_id="acme")
    connect(redis_url, bot_key)
    second = BotServer({k: v for k, v in bot.env.items() if k != "PORT"}, tmp_path / "second.log").start()
    keys = [f"rl{i}" for i in range(200)]

    def carded(s: FakeSlack) -> bool:
        return all((got := s._responses_unlocked(k)) and "blocks" in got[-1] for k in keys)

    try:
        servers = [bot, second]
        with ThreadPoolExecutor(max_workers=40) as pool:
            acks = list(
                pool.map(lambda i: servers[i % 2].command(ids[i], slack.response_url(keys[i])), range(200))
            )
        assert all(a.status_code == 200 for a in acks)
        slack.wait_for(carded, timeout=60)
    finally:
        second.stop()
    times = [r["at"] for r in refold.requests if r["endpoint"] == "get"]
    answers = [slack.responses_to(k) for k in keys]
    assert all(len(a) <= 2 for a in answers)  # a placeholder at most, then the card: nothing twice
    waited = [a for a in answers if len(a) == 2]
    for placeholder, card in waited:
        assert "Looking up" in placeholder["text"] and "blocks" not in placeholder
        assert card["replace_original"] is True  # the card takes the placeholder's place
    for (card,) in (a for a in answers if len(a) == 1):
        assert "replace_original" not in card  # answered in time: nothing to replace
    queued = [p["text"] for p, _ in waited if "queued behind" in p["text"]]
    assert len(times) == 200  # one Refold call per lookup, none refused
    assert len(waited) >= 100 and queued  # ~17 s of lookups: most waited past 3 s, in line
    assert max_in_window(times, 1.0) <= 20
    assert max_in_window(times, 0.01) <= 5
    report = {
        "lookups": 200,
        "cards": sum("blocks" in a[-1] for a in answers),
        "placeholders": len(waited),
        "refold_calls": len(times),
        "seconds": round(max(times) - min(times), 1),
        "max_per_second": max_in_window(times, 1.0),
        "max_per_10ms": max_in_window(times, 0.01),
    }
    print(json.dumps(report))


def test_healthz_is_cheap_and_unauthenticated(bot: BotServer) -> None:
    assert httpx.get(f"{bot.url}/healthz").status_code == 200


def test_a_body_over_one_megabyte_is_refused_before_parsing(
    bot: BotServer, refold: FakeRefold, slack: FakeSlack
) -> None:
    from urllib.parse import urlencode

    huge = urlencode(
        {
            "command": "/execution",
            "text": "x" * (1024 * 1024),
            "team_id": "T1",
            "response_url": slack.response_url("huge"),
        }
    )
    refused = bot.post_signed(huge)
    assert refused.status_code == 413
    fits = urlencode(
        {
            "command": "/execution",
            "text": "y" * 900_000,
            "team_id": "T1",
            "user_id": "U1",
            "response_url": slack.response_url("fits"),
            "trigger_id": "t",
        }
    )
    answered = bot.post_signed(fits)
    assert answered.status_code == 200  # still verified and answered: the usage, since that is no ID
    assert slack.responses_to("huge") == [] and sum(refold.calls.values()) == 0
    assert "refused a request of more than 1048576 bytes" in bot.logs()
