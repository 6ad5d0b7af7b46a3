"""Redis behind Sentinel: a real primary, replica and `redis-server --sentinel`, and a failover forced
by killing the primary while lookups stream in."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.conftest import run_cli
from tests.fakes.refold import FakeRefold, errored_doc
from tests.fakes.slack import FakeSlack
from tests.harness import API_KEY, EXEC_ID, BotServer, is_waiting_note, lookup_answer
from tests.redis_process import RedisProcess, SentinelProcess

# Liveness only: the measured figure is printed (and written down in docs/reliability.md).
GIVE_UP_SECONDS = 30.0


class Cluster:
    def __init__(self, primary: RedisProcess, replica: RedisProcess, sentinel: SentinelProcess) -> None:
        self.primary, self.replica, self.sentinel = primary, replica, sentinel


# Lookups of the stream answered before the failover, and answered after the first recovered one.
STREAMING = 3
STAYS_BACK = 10


def answered(slack: FakeSlack, sent: list[tuple[str, float]]) -> int:
    """Lookups of `sent` with their answer (past any waiting note), card or not."""
    return sum(any(not is_waiting_note(r) for r in slack.responses_to(key)) for key, _ in list(sent))


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def replica_linked(port: int) -> bool:
    client = redis.Redis(port=port)
    try:
        return client.info("replication").get("master_link_status") == "up"
    finally:
        client.close()


def sentinel_knows_replica(sentinel: SentinelProcess) -> bool:
    client = redis.Redis(port=sentinel.port)
    try:
        replicas = client.sentinel_slaves(SentinelProcess.SERVICE)
    finally:
        client.close()
    return any("s_down" not in r.get("flags", "") and r.get("master-link-status") == "ok" for r in replicas)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    (tmp_path / "primary").mkdir()
    (tmp_path / "replica").mkdir()
    primary = RedisProcess(tmp_path / "primary").start()
    replica = RedisProcess(tmp_path / "replica", "--replicaof", "127.0.0.1", str(primary.port)).start()
    sentinel = None
    try:
        wait_until(lambda: replica_linked(replica.port), 10, "the replica never synced")
        sentinel = SentinelProcess(tmp_path, primary.port).start()
        wait_until(lambda: sentinel_knows_replica(sentinel), 15, "Sentinel never found the replica")
        yield Cluster(primary, replica, sentinel)
    finally:
        if sentinel is not None:
            sentinel.stop()
        replica.stop()
        primary.stop()


def test_a_connect_is_on_the_replica_when_it_is_acknowledged(
    cluster: Cluster, refold: FakeRefold, bot_key: str
) -> None:
    refold.api_keys.add(API_KEY)
    env = {"REDIS_URL": cluster.sentinel.url(), "CREDENTIALS_KEY": bot_key, "REFOLD_API_URL": refold.url}
    connected = run_cli("connect", "--team", "T1", "--linked-account", "acme", env=env, stdin=API_KEY)
    assert connected.returncode == 0, connected.stderr
    # Read from the replica at once: WAIT 1 held the answer until it had the write.
    replica = redis.Redis(port=cluster.replica.port)
    try:
        assert replica.keys("refold-bot:creds:*:T1") != []
    finally:
        replica.close()


def test_check_reports_the_role_replicas_and_persistence(cluster: Cluster, bot_key: str) -> None:
    env = {"REDIS_URL": cluster.sentinel.url(), "CREDENTIALS_KEY": bot_key, "SLACK_BOT_TOKEN": ""}
    result = run_cli("check", env=env)
    assert f"ok   redis: answers PING at redis+sentinel://127.0.0.1:{cluster.sentinel.port}/" in result.stdout
    assert "ok   redis: role primary, 1 replica connected" in result.stdout
    assert "ok   redis: persistence: AOF" in result.stdout


def test_a_failover_during_a_stream_of_lookups_answers_every_one_and_keeps_the_connect(
    cluster: Cluster, refold: FakeRefold, slack: FakeSlack, bot_key: str, tmp_path: Path
) -> None:
    refold.api_keys.add(API_KEY)
    refold.add_execution(EXEC_ID, errored_doc(), linked_account_id="acme")
    env = {
        "SLACK_API_URL": f"{slack.url}/api/",
        "REDIS_URL": cluster.sentinel.url(),
        "CREDENTIALS_KEY": bot_key,
        "REFOLD_API_URL": refold.url,
        "REDIS_TIMEOUT_SECONDS": "0.5",
        "CREDENTIALS_CACHE_SECONDS": "0",
    }
    # Connected just before the failover, through the bot's own CLI.
    connected = run_cli("connect", "--team", "T1", "--linked-account", "acme", env=env, stdin=API_KEY)
    assert connected.returncode == 0, connected.stderr
    bot = BotServer(env, tmp_path / "bot.log").start()
    sent: list[tuple[str, float]] = []
    stop = threading.Event()

    def stream() -> None:
        n = 0
        while not stop.is_set():
            key = f"s{n}"
            sent.append((key, time.monotonic()))
            assert bot.command(EXEC_ID, slack.response_url(key)).status_code == 200
            n += 1
            time.sleep(0.2)

    sender = threading.Thread(target=stream)
    try:
        bot.command(EXEC_ID, slack.response_url("before"))
        assert "blocks" in slack.wait_responses("before")[0]
        sender.start()
        # The failover lands on a stream in full flow: lookups of it are already being answered.
        wait_until(lambda: answered(slack, sent) >= STREAMING, 15, "the stream was not answered")
        killed_at = time.monotonic()
        cluster.primary.kill()
        wait_until(
            lambda: cluster.sentinel.primary_port() == cluster.replica.port, 15, "Sentinel did not fail over"
        )
        promoted_after = time.monotonic() - killed_at
        # Keep streaming until a lookup sent after the failover has been answered with its card.
        deadline = time.monotonic() + GIVE_UP_SECONDS
        recovered_at = None
        while recovered_at is None:
            assert time.monotonic() < deadline, "no card after the failover"
            for key, at in list(sent):
                if at > killed_at and any("blocks" in r for r in slack.responses_to(key)):
                    recovered_at = at
                    break
            time.sleep(0.1)
        # The stream goes on until enough lookups sent after the recovered one have answers to show
        # it stays back (about what 2 s of streaming sends).
        wait_until(
            lambda: answered(slack, [(k, at) for k, at in list(sent) if at > recovered_at]) >= STAYS_BACK,
            GIVE_UP_SECONDS,
            "lookups after the recovery were not answered",
        )
    finally:
        stop.set()
        if sender.is_alive():
            sender.join(10)
        logs = bot.logs()
        bot.stop()
    # Each lookup answered once; one kept waiting past 3 s by the failover shows the waiting note
    # first, and its answer replaces it (lookup_answer checks both).
    answers = {key: lookup_answer(slack, key, timeout=15) for key, _ in sent}
    cards = [key for key, answer in answers.items() if "blocks" in answer]
    told = [key for key, answer in answers.items() if "blocks" not in answer]
    noted = sum(len(slack.responses_to(key)) > 1 for key, _ in sent)
    recovery = recovered_at - killed_at
    print(
        f"\nfailover: primary promoted {promoted_after:.1f} s after the kill; first card for a lookup "
        f"sent after the kill at +{recovery:.1f} s; {len(sent)} lookups: {len(cards)} cards, "
        f"{len(told)} told Redis was unavailable, {noted} showed the waiting note first"
    )
    for key in told:
        assert "storage (Redis) is not answering" in answers[key]["text"]
    # Once back, it stays back: every lookup sent after the first recovered one got its card.
    assert all(key in cards for key, at in sent if at >= recovered_at)
    assert "Traceback" not in logs


def test_check_says_it_cannot_tell_persistence_where_config_is_disabled(tmp_path: Path, bot_key: str) -> None:
    # As on managed Redis: CONFIG renamed away.
    server = RedisProcess(tmp_path, "--rename-command", "CONFIG", "").start()
    try:
        env = {"REDIS_URL": server.url, "CREDENTIALS_KEY": bot_key, "SLACK_BOT_TOKEN": ""}
        result = run_cli("check", env=env)
    finally:
        server.stop()
    assert "ok   redis: role primary, 0 replicas connected" in result.stdout
    assert (
        "ok   redis: persistence: could not tell (CONFIG is disabled, as on managed Redis)" in result.stdout
    )
    # Nor whether it evicts: "cannot tell" is no failure.
    assert "ok   redis: eviction: cannot tell (CONFIG is disabled" in result.stdout


def test_check_warns_when_persistence_is_off(redis_url: str, bot_key: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        before = client.config_get("appendonly")["appendonly"], client.config_get("save")["save"]
        client.config_set("appendonly", "no")
        client.config_set("save", "")
        result = run_cli(
            "check", env={"REDIS_URL": redis_url, "CREDENTIALS_KEY": bot_key, "SLACK_BOT_TOKEN": ""}
        )
    finally:
        client.config_set("appendonly", before[0])
        client.config_set("save", before[1])
        client.close()
    assert "WARN redis: persistence is off (no AOF, no RDB)" in result.stdout
