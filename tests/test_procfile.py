"""The Procfile, run as docs/operations.md says to run it locally (`honcho start`), against the fakes."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tests.fakes.refold import FakeRefold, errored_doc
from tests.fakes.slack import FakeSlack
from tests.harness import API_KEY, EXEC_ID, BotServer, connect, live_workers, wait_for_live_worker

ROOT = Path(__file__).resolve().parent.parent


def test_honcho_start_runs_the_web_and_worker_processes_that_answer_a_lookup(
    refold: FakeRefold, slack: FakeSlack, redis_url: str, bot_key: str, tmp_path: Path
) -> None:
    refold.api_keys.add(API_KEY)
    refold.add_execution(EXEC_ID, errored_doc(), linked_account_id="acme")
    connect(redis_url, bot_key)
    bot = BotServer(
        {
            "SLACK_API_URL": f"{slack.url}/api/",
            "REDIS_URL": redis_url,
            "CREDENTIALS_KEY": bot_key,
            "REFOLD_API_URL": refold.url,
        },
        tmp_path / "honcho.log",
    )
    # The Procfile says `python`: this interpreter's, as an activated virtualenv would give.
    bot.env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{bot.env.get('PATH', '')}"
    no_dotenv = tmp_path / "empty.env"
    no_dotenv.write_text("")
    argv = [sys.executable, "-m", "honcho", "start", "-f", str(ROOT / "Procfile"), "-d", str(ROOT),
            "-e", str(no_dotenv), "-p", str(bot.port)]  # fmt: skip
    bot.start(argv=argv)
    try:
        wait_for_live_worker(redis_url)
        assert bot.command(EXEC_ID, slack.response_url("honcho")).status_code == 200
        (reply,) = slack.wait_responses("honcho")
        assert "HubSpot token expired" in str(reply["blocks"])
    finally:
        bot.stop()  # SIGTERM to honcho, which passes it on to both processes
    logs = bot.logs()
    # Both processes ran under honcho's names; the worker answered, then both stopped on the signal.
    assert "web.1" in logs and "worker.1" in logs
    assert f"refold GET /api/v2/public/execution/{EXEC_ID}" in "\n".join(
        line for line in logs.splitlines() if "worker.1" in line
    )
    assert "taking jobs" in logs and "Traceback" not in logs
    assert live_workers(redis_url) == 0
