"""What an operator reads: a start-up with Redis away, and rejected requests, never with their bodies."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from urllib.parse import urlencode

from tests.fakes.slack import FakeSlack
from tests.harness import BotServer


def test_start_up_warns_loudly_when_redis_is_unreachable(
    slack: FakeSlack, bot_key: str, tmp_path: Path
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = BotServer(
        {
            "SLACK_API_URL": f"{slack.url}/api/",
            "REDIS_URL": f"redis://:sekrit-redis-pass@127.0.0.1:{port}/0",
            "CREDENTIALS_KEY": bot_key,
        },
        tmp_path / "bot.log",
    ).start()
    try:
        deadline = time.monotonic() + 10
        while "WARNING bot.container" not in server.logs():
            assert time.monotonic() < deadline, server.logs()
            time.sleep(0.05)
        assert server.http.get(f"{server.url}/healthz").status_code == 503
    finally:
        server.stop()
    (line,) = [line for line in server.logs().splitlines() if "WARNING bot.container" in line]
    assert f"Redis at redis://***@127.0.0.1:{port}/0 is not answering (connection refused" in line
    assert "Check REDIS_URL" in line
    assert "sekrit-redis-pass" not in server.logs()


def test_a_rejected_request_is_logged_with_its_kind_and_team_never_its_body(bot: BotServer) -> None:
    capability = "https://hooks.slack.com/commands/T1/42/zQx9capabilitysecret"
    form = {
        "command": "/execution",
        "text": "confidential-incident-words",
        "team_id": "T1",
        "user_id": "U1",
        "response_url": capability,
        "trigger_id": "t",
    }
    body = urlencode(form)
    forged = bot.post_signed(body, secret="not-the-signing-secret")
    assert forged.status_code == 401
    payload = {"type": "block_actions", "team": {"id": "T2"}, "response_url": capability, "actions": []}
    stale = bot.post_signed(urlencode({"payload": json.dumps(payload)}), timestamp=int(time.time()) - 3600)
    assert stale.status_code == 401
    deadline = time.monotonic() + 5
    while bot.logs().count("rejected a Slack request") < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    logs = bot.logs()
    assert (
        "rejected a Slack request (command /execution, claimed team T1): invalid or missing signature" in logs
    )
    assert "rejected a Slack request (block_actions, claimed team T2): invalid or missing signature" in logs
    for secret in ("zQx9capabilitysecret", "confidential-incident-words", "hooks.slack.com/commands"):
        assert secret not in logs
