"""Prometheus metrics, scraped from the real web process and a real worker, moving with real traffic."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.fakes.refold import FakeRefold, errored_doc
from tests.fakes.slack import FakeSlack
from tests.harness import API_KEY, EXEC_ID, METRICS_TOKEN, BotServer, connect, free_port, wait_for_live_worker

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str, token: str | None = METRICS_TOKEN) -> Samples:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.get(f"{url}/metrics", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def prepare(refold: FakeRefold, redis_url: str, bot_key: str) -> None:
    refold.api_keys.add(API_KEY)
    refold.add_execution(EXEC_ID, errored_doc(), linked_account_id="acme")
    connect(redis_url, bot_key)


def test_metrics_need_the_token(bot: BotServer) -> None:
    assert httpx.get(f"{bot.url}/metrics").status_code == 401
    wrong = httpx.get(f"{bot.url}/metrics", headers={"Authorization": "Bearer not-the-token"})
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
    basic = httpx.get(f"{bot.url}/metrics", headers={"Authorization": f"Basic {METRICS_TOKEN}"})
    assert basic.status_code == 401
    assert METRICS_TOKEN not in wrong.text
    assert (
        "refold_bot_lookups_total"
        in httpx.get(f"{bot.url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).text
    )


def test_counters_move_with_lookups_webhooks_and_slack_requests(
    bot: BotServer, slack: FakeSlack, refold: FakeRefold, redis_url: str, bot_key: str
) -> None:
    prepare(refold, redis_url, bot_key)
    before = scrape(bot.url)
    assert bot.command(EXEC_ID, slack.response_url("m1")).status_code == 200
    slack.wait_responses("m1")
    # The same run again: answered from the cache, no second Refold call.
    assert bot.command(EXEC_ID, slack.response_url("m2")).status_code == 200
    slack.wait_responses("m2")
    assert bot.command("not-an-id", slack.response_url("m3")).status_code == 200
    assert bot.webhook("0" * 32, {"event": "Workflow Errored"}).status_code == 404
    after = scrape(bot.url)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("refold_bot_lookups_total", outcome="ok") == 2
    assert moved("refold_bot_cache_reads_total", result="hit") == 1
    assert moved("refold_bot_cache_reads_total", result="miss") == 1
    endpoint = "GET /api/v2/public/execution/{id}"
    assert moved("refold_bot_refold_requests_total", endpoint=endpoint, status="200") == 1
    assert moved("refold_bot_refold_request_seconds_count", endpoint=endpoint) == 1
    assert moved("refold_bot_webhook_deliveries_total", result="unknown_route") == 1
    # Three requests on /slack/events, each timed (the invalid ID is answered in the ack, no lookup).
    assert moved("refold_bot_slack_ack_seconds_count") == 3
    assert value(after, "refold_bot_follows_active") == 0
    assert ("refold_bot_jobs_in_queue", frozenset({("state", "queued")})) in after


def test_a_worker_serves_its_own_metrics_on_metrics_port(
    bot: BotServer, slack: FakeSlack, refold: FakeRefold, redis_url: str, bot_key: str, tmp_path: Path
) -> None:
    prepare(refold, redis_url, bot_key)
    port = free_port()
    worker, log = bot.start_worker(tmp_path / "worker.log", METRICS_PORT=str(port))
    try:
        wait_for_live_worker(redis_url)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 10
        while True:
            try:
                before = scrape(url)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the worker never served /metrics"
                time.sleep(0.1)
        assert httpx.get(f"{url}/metrics").status_code == 401
        assert bot.command(EXEC_ID, slack.response_url("w1")).status_code == 200
        slack.wait_responses("w1")
        # The job's bookkeeping ends just after its reply.
        deadline = time.monotonic() + 10
        while value(scrape(url), "refold_bot_jobs_total", kind="lookup", result="ok") == value(
            before, "refold_bot_jobs_total", kind="lookup", result="ok"
        ):
            assert time.monotonic() < deadline, "the worker's job counter never moved"
            time.sleep(0.1)
        after = scrape(url)
        assert value(after, "refold_bot_jobs_total", kind="lookup", result="ok") == 1
        assert value(after, "refold_bot_lookups_total", outcome="ok") == 1
    finally:
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(20)
        log.close()
        time.sleep(1.1)  # the shared web process sees no live worker again
    assert code == 0
    # The metrics server stopped with the worker.
    try:
        httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=1)
        raise AssertionError("metrics still served after the worker stopped")
    except httpx.TransportError:
        pass
    assert isinstance(worker, subprocess.Popen)


def test_web_processes_sharing_a_host_report_for_each_other(
    _bot_server: BotServer, slack: FakeSlack, refold: FakeRefold, redis_url: str, bot_key: str, tmp_path: Path
) -> None:
    prepare(refold, redis_url, bot_key)
    shared = tmp_path / "prometheus"
    shared.mkdir()
    # Each server takes a port of its own: the shared server's is left out.
    env = {k: v for k, v in _bot_server.env.items() if k != "PORT"} | {
        "PROMETHEUS_MULTIPROC_DIR": str(shared)
    }
    first = BotServer(env, tmp_path / "first.log").start()
    second = BotServer(env, tmp_path / "second.log").start()
    try:
        for n, web in enumerate((first, second)):
            assert web.command(EXEC_ID, slack.response_url(f"mp{n}")).status_code == 200
            slack.wait_responses(f"mp{n}")
        # Either process's scrape counts both lookups.
        for web in (first, second):
            assert value(scrape(web.url), "refold_bot_lookups_total", outcome="ok") == 2
    finally:
        first.stop()
        second.stop()
