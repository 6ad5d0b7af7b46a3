from __future__ import annotations

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
SHARED = ROOT.parent / "shared"

redis_server = factories.redis_proc(port=None)
# A second server that outage tests stop and start, so the shared one never goes down.
outage_redis_server = factories.redis_proc(port=None)


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
