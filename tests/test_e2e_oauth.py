"""Multi-workspace OAuth, end to end: installs, per-workspace tokens and credentials, uninstall, rotation."""

from __future__ import annotations

import json
import re
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode

import httpx
import pytest
import redis as sync_redis

from tests.fakes.refold import FakeRefold, errored_doc
from tests.fakes.slack import FakeSlack
from tests.harness import EXEC_ID, BotServer, connect, message_shortcut, wait_for_live_worker

CLIENT_ID = "111.222"
CLIENT_SECRET = "oauth-client-secret-5f1e"


def access_answer(
    team: str | None,
    bot_token: str,
    *,
    enterprise: str | None = None,
    org_wide: bool = False,
    refresh_token: str | None = None,
    expires_in: int | None = None,
) -> dict:
    answer = {
        "ok": True,
        "app_id": "A1",
        "authed_user": {"id": "UINSTALLER"},
        "scope": "commands,chat:write",
        "token_type": "bot",
        "access_token": bot_token,
        "bot_user_id": f"UBOT{team or enterprise}",
        "team": {"id": team, "name": f"Team {team}"} if team else None,
        "enterprise": {"id": enterprise, "name": f"Org {enterprise}"} if enterprise else None,
        "is_enterprise_install": org_wide,
    }
    if refresh_token:
        answer.update(refresh_token=refresh_token, expires_in=expires_in)
    return answer


@pytest.fixture
def oauth_bot(redis_url: str, refold: FakeRefold, slack: FakeSlack, bot_key: str, tmp_path):
    server = BotServer(
        {
            "SLACK_BOT_TOKEN": "",
            "SLACK_CLIENT_ID": CLIENT_ID,
            "SLACK_CLIENT_SECRET": CLIENT_SECRET,
            "SLACK_API_URL": f"{slack.url}/api/",
            "REDIS_URL": redis_url,
            "CREDENTIALS_KEY": bot_key,
            "REFOLD_API_URL": refold.url,
            "CREDENTIALS_CACHE_SECONDS": "0",
        },
        tmp_path / "oauth.log",
    ).start()
    yield server
    server.stop()
    logs = server.logs()
    assert CLIENT_SECRET not in logs and "xoxb-team" not in logs and "Traceback" not in logs


def state_and_cookie(page: httpx.Response) -> tuple[str, dict[str, str]]:
    """The install page's state, and its state cookie: Bolt marks it Secure, so over the tests' plain http
    it is sent back by hand, as a browser would over https."""
    state = re.search(r"state=([0-9a-f]+)", page.text).group(1)
    cookie = page.headers["set-cookie"].split(";", 1)[0]
    return state, {"Cookie": cookie}


def install(bot: BotServer, slack: FakeSlack, code: str, answer: dict) -> httpx.Response:
    slack.oauth_codes[code] = answer
    slack.bots[answer["access_token"]] = {
        "bot_id": f"B{code}",
        "user_id": answer["bot_user_id"],
        "team_id": (answer["team"] or {}).get("id"),
    }
    with httpx.Client(base_url=bot.url) as browser:
        page = browser.get("/slack/install")
        assert page.status_code == 200
        state, cookie = state_and_cookie(page)
        return browser.get("/slack/oauth_redirect", params={"code": code, "state": state}, headers=cookie)


def shortcut_from(
    bot: BotServer,
    slack: FakeSlack,
    key: str,
    team: str,
    enterprise: str | None = None,
    org_wide: bool = False,
) -> None:
    payload = message_shortcut({"text": f"failed: {EXEC_ID}"}, slack.response_url(key), team=team)
    if enterprise:
        payload["enterprise"] = {"id": enterprise}
        payload["is_enterprise_install"] = org_wide
        payload["user"]["team_id"] = team
    assert bot.interaction(payload).status_code == 200


def test_installs_lookups_and_uninstall(
    oauth_bot: BotServer, refold: FakeRefold, slack: FakeSlack, redis_url: str, bot_key: str
) -> None:
    done = install(oauth_bot, slack, "code-a", access_answer("TA", "xoxb-team-a"))
    assert done.status_code == 200 and "/execution connect" in done.text, done.text
    assert install(oauth_bot, slack, "code-b", access_answer("TB", "xoxb-team-b")).status_code == 200
    org = install(
        oauth_bot, slack, "code-e", access_answer(None, "xoxb-team-org", enterprise="E1", org_wide=True)
    )
    assert org.status_code == 200

    for team, key in (("TA", "tk_key_team_a"), ("TB", "tk_key_team_b")):
        connect(redis_url, bot_key, team=team, secret=key)
    from bot.store.credentials import Scope

    connect(redis_url, bot_key, team="E1", secret="tk_key_org_e1", scope=Scope.ENTERPRISE)
    refold.api_keys.update({"tk_key_team_a", "tk_key_team_b", "tk_key_org_e1"})
    refold.add_execution(EXEC_ID, errored_doc())

    expectations = [
        ("TA", None, False, "xoxb-team-a", "tk_key_team_a"),
        ("TB", None, False, "xoxb-team-b", "tk_key_team_b"),
        ("TX", "E1", True, "xoxb-team-org", "tk_key_org_e1"),
        # A workspace of the org whose payload says `is_enterprise_install: false` (Slack does for some
        # surfaces and in shared channels) is still served with the org's installation.
        ("TY", "E1", False, "xoxb-team-org", "tk_key_org_e1"),
    ]
    for team, enterprise, org_wide, bot_token, api_key in expectations:
        before = len(slack.calls_to("chat.postMessage"))
        shortcut_from(oauth_bot, slack, f"sc-{team}", team, enterprise, org_wide)
        post = slack.wait_for(
            lambda s, n=before: len(s.calls_to("chat.postMessage")) > n and s.calls_to("chat.postMessage")[-1]
        )
        assert post.token == bot_token
        assert refold.requests[-1]["headers"]["x-api-key"] == api_key
        refold.faults.clear()
        # each finished lookup is cached per credentials; drop the cache so the next team calls Refold
        r = sync_redis.Redis.from_url(redis_url)
        for k in r.keys("refold-bot:exec:*"):
            r.delete(k)

    event = {
        "token": "legacy",
        "team_id": "TA",
        "api_app_id": "A1",
        "type": "event_callback",
        "event": {"type": "app_uninstalled", "event_ts": "1.1"},
        "event_id": "Ev1",
        "event_time": 1,
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": "TA",
                "user_id": "UBOTTA",
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
    }
    assert oauth_bot.post_signed(json.dumps(event), "application/json").status_code == 200
    r = sync_redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + 5
    while any(b":TA" in k for k in r.keys("refold-bot:*")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [k for k in r.keys("refold-bot:*") if b":TA" in k] == []  # installation, credentials, accounts
    assert r.exists("refold-bot:creds:team:TB") and r.exists("refold-bot:install:none:TB:bot")

    # The others keep working; the uninstalled one is no longer authorized.
    before = len(slack.calls_to("chat.postMessage"))
    shortcut_from(oauth_bot, slack, "after-b", "TB")
    post = slack.wait_for(
        lambda s: len(s.calls_to("chat.postMessage")) > before and s.calls_to("chat.postMessage")[-1]
    )
    assert post.token == "xoxb-team-b"
    calls = refold.count("get")
    oauth_bot.interaction(message_shortcut({"text": EXEC_ID}, slack.response_url("after-a"), team="TA"))
    (refused,) = slack.wait_responses("after-a")
    assert "not installed in this workspace" in refused["text"]
    assert refold.count("get") == calls


def test_tokens_are_encrypted_at_rest(oauth_bot: BotServer, slack: FakeSlack, redis_url: str) -> None:
    install(oauth_bot, slack, "code-c", access_answer("TC", "xoxb-team-c-secret"))
    r = sync_redis.Redis.from_url(redis_url)
    keys = r.keys("refold-bot:install:*")
    assert keys
    for key in keys:
        assert b"xoxb-team-c-secret" not in r.dump(key)


def test_replayed_and_unknown_states_get_a_clear_page(oauth_bot: BotServer, slack: FakeSlack) -> None:
    slack.oauth_codes["code-r"] = access_answer("TR", "xoxb-team-r")
    with httpx.Client(base_url=oauth_bot.url) as browser:
        page = browser.get("/slack/install")
        state, cookie = state_and_cookie(page)
        first = browser.get(
            "/slack/oauth_redirect", params={"code": "code-r", "state": state}, headers=cookie
        )
        assert first.status_code == 200
        replay = browser.get(
            "/slack/oauth_redirect", params={"code": "code-r", "state": state}, headers=cookie
        )
    assert replay.status_code >= 400
    assert "expired or was already used" in replay.text and "/slack/install" in replay.text
    with httpx.Client(base_url=oauth_bot.url) as stranger:
        forged = stranger.get("/slack/oauth_redirect", params={"code": "x", "state": "deadbeef"})
    assert forged.status_code >= 400 and "Installation did not finish" in forged.text
    assert len([c for c in slack.calls_to("oauth.v2.access")]) == 1


def test_expired_state_is_rejected(oauth_bot: BotServer, slack: FakeSlack, redis_url: str) -> None:
    slack.oauth_codes["code-x"] = access_answer("TX2", "xoxb-team-x")
    with httpx.Client(base_url=oauth_bot.url) as browser:
        page = browser.get("/slack/install")
        state, cookie = state_and_cookie(page)
        # As if its TTL had run out: Redis drops the key.
        sync_redis.Redis.from_url(redis_url).delete(f"refold-bot:oauth-state:{state}")
        late = browser.get("/slack/oauth_redirect", params={"code": "code-x", "state": state}, headers=cookie)
    assert late.status_code >= 400 and "expired or was already used" in late.text
    assert slack.calls_to("oauth.v2.access") == []


def test_rotation_under_two_workers_spends_the_refresh_token_once(
    oauth_bot: BotServer, refold: FakeRefold, slack: FakeSlack, redis_url: str, bot_key: str, tmp_path
) -> None:
    # Installed with a token that expires in 60 s: inside the 120-minute rotation window at once.
    install(
        oauth_bot,
        slack,
        "code-rot",
        access_answer("TROT", "xoxe.xoxb-old", refresh_token="xoxe-1-refresh", expires_in=60),
    )
    slack.refresh_tokens["xoxe-1-refresh"] = {
        "ok": True,
        "access_token": "xoxe.xoxb-new",
        "refresh_token": "xoxe-2-refresh",
        "expires_in": 43_200,
        "token_type": "bot",
        "scope": "commands,chat:write",
        "bot_user_id": "UBOTTROT",
        "app_id": "A1",
        "team": {"id": "TROT", "name": "Rot"},
        "enterprise": None,
        "is_enterprise_install": False,
    }
    slack.bots["xoxe.xoxb-new"] = {"bot_id": "Brot", "user_id": "UBOTTROT", "team_id": "TROT"}
    connect(redis_url, bot_key, team="TROT", secret="tk_key_rot")
    refold.api_keys.add("tk_key_rot")
    refold.add_execution(EXEC_ID, errored_doc())
    env = {k: v for k, v in oauth_bot.env.items() if k != "PORT"} | {"SLACK_BOT_TOKEN": ""}
    second = BotServer(env, tmp_path / "second.log").start()
    try:
        servers = [oauth_bot, second]
        body = urlencode(
            {
                "command": "/execution",
                "text": "help",
                "team_id": "TROT",
                "user_id": "U1",
                "response_url": slack.response_url("rot"),
                "trigger_id": "t",
            }
        )
        with ThreadPoolExecutor(max_workers=20) as pool:
            answers = list(pool.map(lambda i: servers[i % 2].post_signed(body), range(20)))
    finally:
        second.stop()
    assert all(a.status_code == 200 and "/execution" in a.text for a in answers)
    refreshes = [c for c in slack.calls_to("oauth.v2.access") if c.args.get("grant_type") == "refresh_token"]
    assert len(refreshes) == 1
    stored = sync_redis.Redis.from_url(redis_url).get("refold-bot:install:none:TROT:bot")
    from bot.store.crypto import Cipher

    assert json.loads(Cipher([bot_key]).decrypt(stored))["bot_token"] == "xoxe.xoxb-new"


def test_worker_uses_each_workspaces_own_bot_token(
    oauth_bot: BotServer, refold: FakeRefold, slack: FakeSlack, redis_url: str, bot_key: str, tmp_path
) -> None:
    install(oauth_bot, slack, "code-wa", access_answer("TWA", "xoxb-team-wa"))
    install(oauth_bot, slack, "code-wb", access_answer("TWB", "xoxb-team-wb"))
    for team in ("TWA", "TWB"):
        connect(redis_url, bot_key, team=team, secret=f"tk_key_{team.lower()}")
        refold.api_keys.add(f"tk_key_{team.lower()}")
    refold.add_execution(EXEC_ID, errored_doc())
    worker, log = oauth_bot.start_worker(tmp_path / "worker.log")
    try:
        r = sync_redis.Redis.from_url(redis_url)
        wait_for_live_worker(redis_url)
        for team in ("TWA", "TWB"):
            before = len(slack.calls_to("chat.postMessage"))
            shortcut_from(oauth_bot, slack, f"w-{team}", team)
            post = slack.wait_for(
                lambda s, n=before: (
                    len(s.calls_to("chat.postMessage")) > n and s.calls_to("chat.postMessage")[-1]
                )
            )
            assert post.token == f"xoxb-team-{team[1:].lower()}"
            assert refold.requests[-1]["headers"]["x-api-key"] == f"tk_key_{team.lower()}"
            for k in r.keys("refold-bot:exec:*"):
                r.delete(k)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(20)
        log.close()
    assert "refold GET" in (tmp_path / "worker.log").read_text()  # the worker, not the web process, looked up
