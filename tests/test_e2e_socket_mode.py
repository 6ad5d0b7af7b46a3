"""Socket Mode: the bot connects out over a websocket, takes a slash command, acks it and answers."""

from __future__ import annotations

import time

from tests.fakes.refold import FakeRefold, errored_doc
from tests.fakes.slack import FakeSlack
from tests.harness import API_KEY, EXEC_ID, BotServer, connect, lookup_answer

APP_TOKEN = "xapp-1-A1-1234567890-socketmodetoken"


def test_slash_command_over_socket_mode(
    refold: FakeRefold, slack: FakeSlack, redis_url: str, bot_key: str, tmp_path
) -> None:
    refold.api_keys.add(API_KEY)
    refold.add_execution(EXEC_ID, errored_doc(), linked_account_id="acme")
    connect(redis_url, bot_key)
    # No signing secret: Socket Mode requests come over the app's own authenticated websocket.
    bot = BotServer(
        {
            "SLACK_APP_TOKEN": APP_TOKEN,
            "SLACK_SIGNING_SECRET": "",
            "SLACK_API_URL": f"{slack.url}/api/",
            "REDIS_URL": redis_url,
            "CREDENTIALS_KEY": bot_key,
            "REFOLD_API_URL": refold.url,
        },
        tmp_path / "socket.log",
    ).start(wait_for_http=False)
    try:
        (opened,) = slack.wait_for(lambda s: s.calls_to("apps.connections.open"), timeout=20)
        assert opened.token == APP_TOKEN
        time.sleep(0.5)  # let the websocket come up
        with slack.lock:
            slack.socket_outbox.append(
                {
                    "envelope_id": "env-1",
                    "type": "slash_commands",
                    "accepts_response_payload": True,
                    "payload": {
                        "command": "/execution",
                        "text": EXEC_ID,
                        "team_id": "T1",
                        "user_id": "U1",
                        "channel_id": "C1",
                        "response_url": slack.response_url("sm"),
                        "trigger_id": "t",
                        "api_app_id": "A1",
                    },
                }
            )
        ack = slack.wait_for(
            lambda s: [m for m in s.socket_inbox if m.get("envelope_id") == "env-1"], timeout=10
        )
        assert ack[0]["envelope_id"] == "env-1"
        reply = lookup_answer(slack, "sm")
        assert "HubSpot token expired" in str(reply["blocks"])
    finally:
        code = bot.stop()
    assert code == 0  # SIGTERM: the connection is closed and in-flight replies drained
    assert APP_TOKEN not in bot.logs()
