"""`python -m bot init` under a pseudo-terminal, against the loopback Slack and a real Redis."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pexpect
from cryptography.fernet import Fernet

from tests.conftest import ROOT, run_cli
from tests.fakes.slack import FakeSlack
from tests.harness import BOT_TOKEN

APP_TOKEN = "xapp-1-A111-222-initapptoken"
SIGNING_SECRET_HEX = "0123456789abcdef0123456789abcdef"


def spawn_init(cwd: Path, slack: FakeSlack) -> pexpect.spawn:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLACK_", "REFOLD_", "REDIS_", "CREDENTIALS_"))
    }
    env.update({"SLACK_API_URL": f"{slack.url}/api/", "PYTHONPATH": str(ROOT)})
    return pexpect.spawn(
        sys.executable, ["-m", "bot", "init"], cwd=str(cwd), env=env, encoding="utf-8", timeout=20
    )


def read_env(path: Path) -> dict[str, str]:
    pairs = (
        line.split("=", 1) for line in path.read_text().splitlines() if line and not line.startswith("#")
    )
    return dict(pairs)


def dead_redis_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"redis://127.0.0.1:{sock.getsockname()[1]}/0"


def test_socket_mode_set_up_checks_each_token_and_writes_env(
    tmp_path: Path, slack: FakeSlack, redis_url: str
) -> None:
    child = spawn_init(tmp_path, slack)
    child.expect(r"Choose \[1\]: ")
    child.sendline("1")
    # The app comes first, tokens after: the manifest and where to paste it, before any question.
    child.expect("At https://api.slack.com/apps choose Create New App > From an app")
    child.expect("socket_mode_enabled: true")
    child.expect("connections:write scope")
    child.expect(r"Press Enter once the app is created and installed: ")
    child.sendline("")
    child.expect(r"Bot token \(xoxb-…\) \(hidden\): ")
    child.sendline(BOT_TOKEN)
    child.expect("ok: the bot @refold in workspace Acme")
    child.expect(r"App-level token \(xapp-…\) \(hidden\): ")
    child.sendline(APP_TOKEN)
    child.expect("ok: Socket Mode connections allowed")
    child.expect(r"Redis URL \[embedded\]: ")
    child.sendline(redis_url)
    child.expect("answers PING")
    child.expect("Wrote .env with a new CREDENTIALS_KEY")
    child.expect("Next: python -m bot")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    written = read_env(tmp_path / ".env")
    assert written["SLACK_BOT_TOKEN"] == BOT_TOKEN and written["SLACK_APP_TOKEN"] == APP_TOKEN
    assert written["REDIS_URL"] == redis_url and "SLACK_SIGNING_SECRET" not in written
    Fernet(written["CREDENTIALS_KEY"].encode())  # a real key
    assert stat.S_IMODE((tmp_path / ".env").stat().st_mode) == 0o600
    assert [c.token for c in slack.calls_to("auth.test")] == [BOT_TOKEN]
    assert [c.token for c in slack.calls_to("apps.connections.open")] == [APP_TOKEN]
    # The secrets were read without echo: the terminal never showed them.
    assert BOT_TOKEN not in child.before + (child.logfile_read or "").__str__()
    # The written .env is one the bot accepts.
    checked = subprocess.run(
        [sys.executable, "-m", "bot", "check"],
        cwd=tmp_path,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "REDIS_", "CREDENTIALS_"))},
            "SLACK_API_URL": f"{slack.url}/api/",
            "PYTHONPATH": str(ROOT),
        },
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert "ok   settings: complete" in checked.stdout, checked.stdout
    assert "ok   redis: answers PING" in checked.stdout


def test_http_set_up_re_asks_what_slack_or_redis_refuse(
    tmp_path: Path, slack: FakeSlack, redis_url: str
) -> None:
    slack.fail("auth.test", "invalid_auth")
    child = spawn_init(tmp_path, slack)
    child.expect(r"Choose \[1\]: ")
    child.sendline("2")
    child.expect(r"Public URL .*: ")
    child.sendline("http://insecure.example")
    child.expect("must be an https:// URL")
    child.sendline("https://bot.acme.example")
    child.expect("https://bot.acme.example/slack/events")  # the manifest, with this URL filled in
    child.expect("Signing Secret is on Basic Information")
    child.expect(r"Press Enter once the app is created and installed: ")
    child.sendline("")
    child.expect(r"Bot token \(xoxb-…\) \(hidden\): ")
    child.sendline("xoxb-revoked-token-value")
    child.expect("Slack refused it: invalid_auth")
    child.expect(r"Keep it anyway\? \[y/N\]: ")
    child.sendline("n")
    child.expect(r"Bot token \(xoxb-…\) \(hidden\): ")
    child.sendline(BOT_TOKEN)
    child.expect("ok: the bot")
    child.expect(r"Signing secret .*: ")
    child.sendline(SIGNING_SECRET_HEX)
    child.expect(r"Redis URL \[embedded\]: ")
    child.sendline(dead_redis_url())
    child.expect("is not answering: connection refused")
    child.expect(r"Use it anyway .*\[y/N\]: ")
    child.sendline("n")
    child.expect(r"Redis URL \[embedded\]: ")
    child.sendline(redis_url)
    child.expect("answers PING")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    written = read_env(tmp_path / ".env")
    assert written["SLACK_SIGNING_SECRET"] == SIGNING_SECRET_HEX
    assert written["PUBLIC_URL"] == "https://bot.acme.example" and "SLACK_APP_TOKEN" not in written


def test_an_existing_env_is_kept_unless_the_person_says_replace(tmp_path: Path, slack: FakeSlack) -> None:
    (tmp_path / ".env").write_text("SLACK_BOT_TOKEN=xoxb-mine\n")
    child = spawn_init(tmp_path, slack)
    child.expect(r"\.env exists already\. Replace it\? \[y/N\]: ")
    child.sendline("")
    child.expect("Kept your .env; nothing was written")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert (tmp_path / ".env").read_text() == "SLACK_BOT_TOKEN=xoxb-mine\n"
    assert slack.calls_to("auth.test") == []


def test_without_a_terminal_init_refuses_in_one_line(tmp_path: Path) -> None:
    result = run_cli("init", env={}, stdin="")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "needs a terminal" in result.stderr
    assert not (tmp_path / ".env").exists()


def test_a_first_run_at_a_terminal_sets_up_then_serves_on_the_embedded_redis(
    tmp_path: Path, slack: FakeSlack
) -> None:
    """`python -m bot` with no .env, at a terminal: init's questions (embedded Redis the default
    answer), then the bot serves with what was written."""
    import httpx

    from tests.harness import free_port

    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLACK_", "REFOLD_", "REDIS_", "CREDENTIALS_"))
    }
    env.update({"SLACK_API_URL": f"{slack.url}/api/", "PYTHONPATH": str(ROOT), "PORT": str(port)})
    child = pexpect.spawn(
        sys.executable, ["-m", "bot"], cwd=str(tmp_path), env=env, encoding="utf-8", timeout=20
    )
    try:
        child.expect("No .env here yet, so first a few questions.")
        child.expect(r"Choose \[1\]: ")
        child.sendline("2")
        child.expect(r"Public URL .*: ")
        child.sendline("https://bot.acme.example")
        child.expect(r"Press Enter once the app is created and installed: ")
        child.sendline("")
        child.expect(r"Bot token \(xoxb-…\) \(hidden\): ")
        child.sendline(BOT_TOKEN)
        child.expect(r"Signing secret .*: ")
        child.sendline(SIGNING_SECRET_HEX)
        child.expect(r"Redis URL \[embedded\]: ")
        child.sendline("")
        child.expect("ok: an embedded Redis, started with the bot")
        child.expect("Starting the bot.")
        child.expect(
            r"REDIS_URL is embedded: using an embedded Redis \(data in \.bot-data/, for one machine\)"
        )
        child.expect("Application startup complete")
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
        assert read_env(tmp_path / ".env")["REDIS_URL"] == "embedded"
    finally:
        child.kill(15)
        child.expect(pexpect.EOF)
        child.close()
    assert not (tmp_path / ".bot-data" / "embedded-redis.json").exists()
