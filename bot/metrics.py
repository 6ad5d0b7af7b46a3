"""Prometheus instruments, and the text a scrape reads.

Every process keeps its own values. Where several processes share a host, set
PROMETHEUS_MULTIPROC_DIR (an empty directory, wiped before they start): prometheus-client then keeps
values in files there, and a scrape of any process reads them all.
"""

from __future__ import annotations

import hmac
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

PREFIX = "refold_bot"
# Refold answers in ~100 ms to a few seconds; Slack wants an ack within 3 s.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

LOOKUPS = Counter(f"{PREFIX}_lookups", "Execution lookups, by outcome (ok, or the error's kind)", ["outcome"])
REFOLD_REQUESTS = Counter(
    f"{PREFIX}_refold_requests", "Calls to Refold's API, by endpoint and HTTP status", ["endpoint", "status"]
)
REFOLD_SECONDS = Histogram(
    f"{PREFIX}_refold_request_seconds", "Latency of Refold's API", ["endpoint"], buckets=LATENCY_BUCKETS
)
CACHE_READS = Counter(f"{PREFIX}_cache_reads", "Execution cache reads, by result (hit, miss)", ["result"])
SHARED_FETCHES = Counter(
    f"{PREFIX}_single_flight_joins",
    "Lookups answered by another lookup's Refold call (in this process, or another's through Redis)",
    ["scope"],
)
ACK_SECONDS = Histogram(
    f"{PREFIX}_slack_ack_seconds", "Time to answer a request on /slack/events", buckets=LATENCY_BUCKETS
)
JOBS = Counter(f"{PREFIX}_jobs", "Jobs run, by kind and result (ok, retry, failed)", ["kind", "result"])
JOB_SECONDS = Histogram(f"{PREFIX}_job_seconds", "Time a job ran", ["kind"], buckets=LATENCY_BUCKETS)
# Read from Redis when scraped: the same figure whichever process answers.
JOBS_WAITING = Gauge(
    f"{PREFIX}_jobs_in_queue", "Jobs in the queue, by state", ["state"], multiprocess_mode="mostrecent"
)
JOB_OLDEST_SECONDS = Gauge(
    f"{PREFIX}_job_oldest_queued_seconds",
    "Age of the oldest job waiting for a worker (0 when none waits)",
    multiprocess_mode="mostrecent",
)
# This process's own: work it runs after an answer (caching, bookkeeping, short replies).
BACKGROUND_TASKS = Gauge(
    f"{PREFIX}_background_tasks",
    "Tasks this process runs after an answer (caching a result, remembering accounts, short replies)",
    multiprocess_mode="livesum",
)
FOLLOWS_ACTIVE = Gauge(
    f"{PREFIX}_follows_active",
    "Executions being followed, in every workspace",
    multiprocess_mode="mostrecent",
)
WEBHOOKS = Counter(f"{PREFIX}_webhook_deliveries", "Refold webhook deliveries, by result", ["result"])
SLACK_ERRORS = Counter(
    f"{PREFIX}_slack_api_errors", "Slack API calls that failed, by method and error", ["method", "error"]
)


@contextmanager
def timed(histogram: Histogram, *labels: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        (histogram.labels(*labels) if labels else histogram).observe(time.perf_counter() - start)


def exposition() -> tuple[bytes, str]:
    """The Prometheus text of every instrument (of every process on the host, in multiprocess mode)."""
    registry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
    return generate_latest(registry), CONTENT_TYPE_LATEST


def token_matches(authorization: str | None, token: str) -> bool:
    """`Authorization: Bearer <token>`, compared in constant time."""
    scheme, _, given = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())
