from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import stamina
from cryptography.fernet import Fernet
from pytest_redis import factories

from tests.fakes.refold import FakeRefold

ROOT = Path(__file__).resolve().parent.parent
# Copies of the documented Refold examples and Slack's manifest schema: the suite reads nothing outside
# the repository.
DATA = ROOT / "tests" / "data"

redis_server = factories.redis_proc(port=None)
# A second server that outage tests stop and start, so the shared one never goes down.
outage_redis_server = factories.redis_proc(port=None)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test in a `test_e2e_*` module is end to end: it starts the bot's own processes."""
    for item in items:
        if item.path.name.startswith("test_e2e_"):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(autouse=True)
def _fast_stamina() -> Iterator[None]:
    # Backoff waits are real in production; in tests only the attempt count matters.
    stamina.set_testing(True, attempts=3)
    yield
    stamina.set_testing(False)


@pytest.fixture
def redis_url(redis_server) -> str:
    client = redis.Redis(host=redis_server.host, port=redis_server.port)
    client.flushall()
    client.close()
    return f"redis://{redis_server.host}:{redis_server.port}/0"


@pytest.fixture(scope="session")
def _refold_server() -> Iterator[FakeRefold]:
    server = FakeRefold().start()
    yield server
    server.stop()


@pytest.fixture
def refold(_refold_server: FakeRefold) -> FakeRefold:
    _refold_server.reset()
    return _refold_server


@pytest.fixture
def credentials_key() -> str:
    return Fernet.generate_key().decode()


def run_cli(
    *args: str, env: dict[str, str], stdin: str | None = None, timeout: float = 30
) -> subprocess.CompletedProcess:
    full_env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLACK_", "REFOLD_", "REDIS_", "CREDENTIALS_"))
    }
    full_env.update(env)
    full_env["PYTHONPATH"] = str(ROOT)
    # tests/ as the working directory: a developer's own .env at the top level must not leak in.
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=full_env,
        cwd=ROOT / "tests",
        timeout=timeout,
    )


# --- end-to-end: the real bot process, the loopback Slack, the loopback Refold, a real Redis --------

from tests.fakes.slack import FakeSlack  # noqa: E402
from tests.harness import METRICS_TOKEN, BotServer  # noqa: E402


@pytest.fixture(scope="session")
def _slack_server() -> Iterator[FakeSlack]:
    server = FakeSlack().start()
    yield server
    server.stop()


@pytest.fixture
def slack(_slack_server: FakeSlack, bot_key: str) -> Iterator[FakeSlack]:
    _slack_server.reset()
    yield _slack_server
    # Whatever the test did, nothing secret was ever sent to Slack.
    from tests.harness import API_KEY, BOT_TOKEN, SIGNING_SECRET

    with _slack_server.lock:
        sent = json.dumps([c.args for c in _slack_server.calls] + _slack_server.responses, ensure_ascii=False)
    for secret in (API_KEY, BOT_TOKEN, SIGNING_SECRET, bot_key, "tk_wrong_key", "tk_attacker_key_1"):
        assert secret not in sent, "a secret was sent to Slack"


@pytest.fixture(scope="session")
def bot_key() -> str:
    return Fernet.generate_key().decode()


@pytest.fixture(scope="session")
def _bot_server(
    redis_server, _refold_server, _slack_server, bot_key, tmp_path_factory
) -> Iterator[BotServer]:
    env = {
        "SLACK_API_URL": f"{_slack_server.url}/api/",
        "REDIS_URL": f"redis://{redis_server.host}:{redis_server.port}/0",
        "CREDENTIALS_KEY": bot_key,
        "REFOLD_API_URL": _refold_server.url,
        "REFOLD_TIMEOUT_SECONDS": "1.5",
        # Tests rewrite credentials behind the bot's back; the in-process cache has its own unit test.
        "CREDENTIALS_CACHE_SECONDS": "0",
        # Followed runs are looked at every second (5 s in production), so follow tests take seconds.
        "FOLLOW_POLL_SECONDS": "1",
        "METRICS_TOKEN": METRICS_TOKEN,
    }
    server = BotServer(env, tmp_path_factory.mktemp("bot") / "bot.log").start()
    yield server
    server.stop()
    # Across every end-to-end test: no secret ever reached the logs, and every line says whose it is.
    from tests.harness import API_KEY, BOT_TOKEN, SIGNING_SECRET

    logs = server.logs()
    secrets = (
        BOT_TOKEN,
        SIGNING_SECRET,
        bot_key,
        API_KEY,
        METRICS_TOKEN,
        "tk_wrong_key",
        "tk_attacker_key_1",
    )
    for secret in secrets:
        assert secret not in logs, "a secret reached the logs"
    lines = [line for line in logs.splitlines() if line[:4].isdigit()]
    assert lines and all("[req=" in line and " team=" in line for line in lines)


@pytest.fixture
def bot(_bot_server: BotServer, redis_url: str, refold: FakeRefold, slack: FakeSlack) -> Iterator[BotServer]:
    yield _bot_server
    # The shared web process caches a result after it answers: let that land before the next test
    # empties Redis, or it lands in the next test's Redis and answers its lookup from the cache.
    _bot_server.wait_for_background_work()
