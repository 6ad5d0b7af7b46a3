"""Load benchmark: the real bot beside the Bolt apps a user would write, same machine, same run, same
load generator.

    python bench/run.py            # writes bench/results.md (about 5 minutes)

Starts a real redis-server, the loopback Refold (fixed latency, default 100 ms) and Slack fakes, and
as separate processes: the bot (`python -m bot serve`, then with `python -m bot worker` beside it),
`bench/bare_app.py` (Bolt's default path: ack only, or ack and a static card through `respond()`) and
`bench/naive_app.py` (the bot's job as Bolt's docs suggest). Sends signed slash commands to each,
records ack latency, the time until the answer reaches the response_url, server CPU, and what every
request got; then the pinned phase, the single-key burst, the Refresh and cache scenarios, RSS and
the render benchmark. See bench/README.md for how to read the tables.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlencode

import httpx
from cryptography.fernet import Fernet
from pydantic import SecretStr
from slack_sdk.signature import SignatureVerifier

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import render  # noqa: E402
from bot.refold.credentials import AuthKind  # noqa: E402
from bot.store.credentials import CredentialStore, Scope, StoredCredentials  # noqa: E402
from bot.store.crypto import Cipher  # noqa: E402
from tests.fakes.refold import FakeRefold, errored_doc, running_doc  # noqa: E402
from tests.fakes.slack import FakeSlack  # noqa: E402
from tests.harness import (  # noqa: E402
    SIGNING_SECRET,
    BotServer,
    block_actions,
    is_waiting_note,
    max_in_window,
    wait_for_live_worker,
)
from tests.redis_process import RedisProcess  # noqa: E402

if TYPE_CHECKING:
    from bench.redis_trips import TripReport

WORKSPACES = 200
TRIP_LOOKUPS = 50  # lookups one at a time, per process arrangement, whose Redis round trips are counted
signer = SignatureVerifier(SIGNING_SECRET)


@dataclass
class Phase:
    target: str
    concurrency: int
    requests: int
    acks_ms: list[float]
    wall_s: float  # from the first send to the last ack
    cards_ms: list[float]  # from each send to its answer at the response_url
    refold_calls: int
    server_cpu: float  # share of one core used by the server(s) under test during the phase
    harness_cpu: float  # share of one core used by this process: load generator and both fakes
    cpu_seconds: float = 0.0  # server CPU in the phase, all of its processes
    elapsed_s: float = 0.0  # from the first send to the last answer
    outcomes: collections.Counter[str] = field(default_factory=collections.Counter)
    placeholders: int = 0
    to_refold_ms: list[float] = field(default_factory=list)  # from each send to its Refold request

    @property
    def throughput(self) -> float:
        return self.requests / self.wall_s

    @property
    def cards_per_second(self) -> float:
        return self.outcomes["card"] / self.elapsed_s if self.elapsed_s else 0.0

    @property
    def cpu_ms_per_request(self) -> float:
        return self.cpu_seconds / self.requests * 1000

    def accounted(self) -> str:
        return ", ".join(f"{n} {kind}" for kind, n in self.outcomes.most_common())


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def signed(body: str) -> dict[str, str]:
    ts = str(int(time.time()))
    return {
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": signer.generate_signature(timestamp=ts, body=body),
        "Content-Type": "application/x-www-form-urlencoded",
    }


async def fire(
    url: str, bodies: list[str], concurrency: int, after_each: Callable[[int], Awaitable[None]] | None = None
) -> tuple[list[float], list[float], float]:
    """Send every body with at most `concurrency` in flight; return ack latencies, send times, wall time."""
    acks: list[float] = [0.0] * len(bodies)
    transport_retries: list[int] = []
    sent_at: list[float] = [0.0] * len(bodies)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(len(bodies)):
        queue.put_nowait(i)

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            i = queue.get_nowait()
            headers = signed(bodies[i])
            sent_at[i] = time.monotonic()
            try:
                response = await client.post(url, content=bodies[i], headers=headers)
            except httpx.TransportError:
                # A keep-alive connection the server had just closed: resend once on a fresh one and
                # count it from the first attempt, as a user would experience it.
                transport_retries.append(i)
                response = await client.post(url, content=bodies[i], headers=headers)
            acks[i] = (time.monotonic() - sent_at[i]) * 1000
            assert response.status_code == 200, response.text
            if after_each is not None:
                await after_each(i)

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        started = time.monotonic()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        wall = time.monotonic() - started
    if transport_retries:
        print(f"{url}: {len(transport_retries)} requests resent after a closed connection", file=sys.stderr)
    return acks, sent_at, wall


def command_body(text: str, team: str, response_url: str) -> str:
    return urlencode(
        {
            "command": "/execution",
            "text": text,
            "team_id": team,
            "user_id": "U1",
            "channel_id": "C1",
            "response_url": response_url,
            "trigger_id": "t",
            "api_app_id": "A1",
        }
    )


def answered(slack: FakeSlack, key: str) -> float | None:
    """When the answer (not a "Looking up…" placeholder) reached the response_url, if it did."""
    got = slack.responses_to(key)
    final = [r for r in got if not is_waiting_note(r)]
    return final[0]["_at"] if final else None


def wait_for_cards(slack: FakeSlack, keys: list[str], timeout: float = 90) -> dict[str, float]:
    """Every answer that arrived within `timeout`; the ones missing are counted as "nothing"."""
    deadline = time.monotonic() + timeout
    seen: dict[str, float] = {}
    while time.monotonic() < deadline:
        seen = {k: at for k in keys if (at := answered(slack, k)) is not None}
        if len(seen) == len(keys):
            return seen
        time.sleep(0.02)
    print(f"only {len(seen)} of {len(keys)} answers arrived", file=sys.stderr)
    return seen


def classify(responses: list[dict]) -> str:
    """What one request got: a card, "busy", another error reply (by its first words), or nothing."""
    final = [r for r in responses if not is_waiting_note(r)]
    if not final:
        return "nothing"
    if len(final) > 1:
        return "answered twice"
    text = str(final[0].get("text", ""))
    if "blocks" in final[0]:
        return "card"
    if "Refold is busy" in text:
        return "busy"
    return "error: " + " ".join(text.split()[:5])


def pin(pids: int | tuple[int, ...], cores: set[int]) -> None:
    """Every thread of these processes onto `cores` (taskset, for all threads at once)."""
    for pid in pids if isinstance(pids, tuple) else (pids,):
        for tid in os.listdir(f"/proc/{pid}/task"):
            os.sched_setaffinity(int(tid), cores)


def process_cpu_seconds(pids: int | tuple[int, ...]) -> float:
    total = 0.0
    for pid in pids if isinstance(pids, tuple) else (pids,):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def run_phase(
    server_pid: int | tuple[int, ...],
    name: str,
    target_url: str,
    refold: FakeRefold,
    slack: FakeSlack,
    concurrency: int,
    requests: int,
    ids: list[str],
    expect_cards: bool,
    closed_loop: bool = False,
    workspaces: int = WORKSPACES,
) -> Phase:
    keys = [f"{name}-c{concurrency}-{time.monotonic_ns()}-{i}" for i in range(requests)]
    bodies = [
        command_body(ids[i], f"T{i % workspaces}", slack.response_url(keys[i])) for i in range(requests)
    ]
    calls_before, requests_before = refold.count("get"), len(refold.requests)
    cpu_before, own_before = process_cpu_seconds(server_pid), time.process_time()
    after_each = None
    if expect_cards and (closed_loop or concurrency == 1):
        # Closed loop: each of the `concurrency` users sends its next command only when its card arrived.
        async def after_each(i: int) -> None:
            while answered(slack, keys[i]) is None:  # noqa: ASYNC110 - the fake lives in another thread
                await asyncio.sleep(0.002)

    started = time.monotonic()
    acks, sent_at, wall = asyncio.run(fire(_events(target_url), bodies, concurrency, after_each))
    cards: list[float] = []
    to_refold: list[float] = []
    outcomes: collections.Counter[str] = collections.Counter()
    placeholders = 0
    if expect_cards:
        arrived = wait_for_cards(slack, keys)
        asked = {
            r["path"].rsplit("/", 1)[-1]: r["at"]
            for r in list(refold.requests)[requests_before:]
            if r["endpoint"] == "get"
        }
        elapsed = time.monotonic() - started
        cpu = process_cpu_seconds(server_pid) - cpu_before
        time.sleep(0.5)  # room for a second answer, were one coming
        for i, k in enumerate(keys):
            got = slack.responses_to(k)
            outcomes[classify(got)] += 1
            placeholders += any(is_waiting_note(r) for r in got)
            if k in arrived and "blocks" in got[-1]:
                cards.append((arrived[k] - sent_at[i]) * 1000)
                if ids[i] in asked:
                    to_refold.append((asked[ids[i]] - sent_at[i]) * 1000)
    else:
        elapsed = time.monotonic() - started
        cpu = process_cpu_seconds(server_pid) - cpu_before
        outcomes["acked"] = sum(1 for a in acks if a > 0)
    return Phase(
        name,
        concurrency,
        requests,
        acks,
        wall,
        cards,
        refold.count("get") - calls_before,
        cpu / elapsed,
        (time.process_time() - own_before) / elapsed,
        cpu_seconds=cpu,
        elapsed_s=elapsed,
        outcomes=outcomes,
        placeholders=placeholders,
        to_refold_ms=to_refold,
    )


def _events(target_url: str) -> str:
    # The floor is a plain route on the bare app's server: HTTP, Starlette and the load generator only.
    return target_url if target_url.endswith("/floor") else f"{target_url}/slack/events"


METRICS_TOKEN = "bench-metrics-token"


def ack_histogram(url: str) -> dict[float, float]:
    """The web process's own ack timings so far (its /metrics histogram): bucket bound -> count."""
    text = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).text
    counts: dict[float, float] = {}
    for line in text.splitlines():
        if line.startswith("refold_bot_slack_ack_seconds_bucket{"):
            bound = line.split('le="', 1)[1].split('"', 1)[0]
            counts[float(bound)] = float(line.rsplit(" ", 1)[1])
    return counts


def server_ack_p99(before: dict[float, float], after: dict[float, float]) -> str:
    """The bucket holding the 99th percentile of the acks between two snapshots, as "≤ N ms"."""
    bounds = sorted(after)
    total = after[bounds[-1]] - before.get(bounds[-1], 0)
    for bound in bounds:
        if after[bound] - before.get(bound, 0) >= 0.99 * total:
            return f"≤ {bound * 1000:.0f} ms" if bound != float("inf") else "> 10 s"
    return "?"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def connect_workspaces(redis_url: str, key: str) -> None:
    import redis.asyncio as aioredis

    client = aioredis.from_url(redis_url)
    store = CredentialStore(client, Cipher([key]))
    for i in range(WORKSPACES):
        await store.save(
            Scope.TEAM,
            f"T{i}",
            StoredCredentials(
                kind=AuthKind.API_KEY,
                secret=SecretStr(f"tk_bench_key_{i:04d}"),
                linked_account_id="acme",
                connected_at=datetime.now(UTC),
            ),
        )
    await client.aclose()


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    cores = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    redis_version = subprocess.run(
        ["redis-server", "--version"], capture_output=True, text=True
    ).stdout.split()[2]
    packages = ", ".join(
        f"{p} {version(p)}"
        for p in ("slack-bolt", "slack-sdk", "httpx", "redis", "uvicorn", "starlette", "pyrate-limiter")
    )
    return (
        f"{cores} cores ({cpu}), Python {platform.python_version()}, {platform.system()} {platform.release()}; "
        f"Redis {redis_version}; {packages}"
    )


def start_app(script: str, env: dict[str, str], log: Path, **extra: str) -> BotServer:
    """A peer app as its own process, served by uvicorn on its own port like the bot."""
    server = BotServer({**env, **extra}, log)
    return server.start(argv=[sys.executable, str(ROOT / "bench" / script), str(server.port)])


def stop_servers(*servers: BotServer) -> None:
    for server in servers:
        if server.process is not None and server.process.poll() is None:
            server.stop()


def pid_of(server: BotServer) -> int:
    assert server.process is not None
    return server.process.pid


def start_world(workdir: Path, latency: float) -> tuple[RedisProcess, FakeRefold, FakeSlack, dict[str, str]]:
    """Redis, the Refold and Slack fakes, 200 connected workspaces, and the env that points a bot at
    them."""
    redis = RedisProcess(workdir).start()
    refold, slack = FakeRefold().start(), FakeSlack().start()
    key = Fernet.generate_key().decode()
    asyncio.run(connect_workspaces(redis.url, key))
    refold.api_keys.update(f"tk_bench_key_{i:04d}" for i in range(WORKSPACES))
    refold.latency = latency
    env = {
        "SLACK_API_URL": f"{slack.url}/api/",
        "REDIS_URL": redis.url,
        "CREDENTIALS_KEY": key,
        "REFOLD_API_URL": refold.url,
        "LOG_LEVEL": "WARNING",
    }
    return redis, refold, slack, env


def main() -> None:
    from bench import redis_trips  # it imports this module's helpers

    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=0.1, help="fake Refold latency in seconds")
    parser.add_argument("--requests", type=int, default=400, help="requests per phase at concurrency 10/100")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results.md"))
    args = parser.parse_args()
    n = args.requests

    workdir = Path(tempfile.mkdtemp(prefix="bench-"))
    redis, refold, slack, env = start_world(workdir, args.latency)
    counter = iter(range(1, 10**9))

    def fresh(count: int) -> list[str]:
        """Executions not seen before: no cache hit, one Refold call each."""
        out = [f"{next(counter):024x}" for _ in range(count)]
        for eid in out:
            refold.add_execution(eid, errored_doc())
        return out

    bot = BotServer({**env, "METRICS_TOKEN": METRICS_TOKEN}, workdir / "bot.log").start()
    bare = start_app("bare_app.py", env, workdir / "bare.log")
    responder = start_app("bare_app.py", env, workdir / "respond.log", BARE_RESPOND="1")
    naive = start_app("naive_app.py", env, workdir / "naive.log", NAIVE_API_KEY="tk_bench_key_0000")
    lean = start_app("lean_app.py", env, workdir / "lean.log", LEAN_API_KEY="tk_bench_key_0000")
    apps = {
        "bare Bolt, respond()": (pid_of(responder), responder.url),
        "naive Bolt app": (pid_of(naive), naive.url),
        "lean Bolt app": (pid_of(lean), lean.url),
        "bot": (pid_of(bot), bot.url),
    }

    def phase(target: str, pids: int | tuple[int, ...], url: str, c: int, count: int, **kw: object) -> Phase:
        cards = target not in ("http floor", "bare Bolt, ack only")
        result = run_phase(pids, target, url, refold, slack, c, count, fresh(count), cards, **kw)  # type: ignore[arg-type]
        print(f"{target:32} c{c:<4} {result.accounted()}", file=sys.stderr)
        time.sleep(1)
        return result

    phases: list[Phase] = []
    pinned: list[Phase] = []
    try:
        for target, (pid, url) in apps.items():  # warm up: connections, auth.test, first imports
            phase(target, pid, url, 1, 5)
        phase("bare Bolt, ack only", pid_of(bare), bare.url, 1, 5)
        for c, count in ((1, 100), (10, n), (100, n)):
            phases.append(phase("http floor", pid_of(bare), f"{bare.url}/floor", c, count))
            phases.append(phase("bare Bolt, ack only", pid_of(bare), bare.url, c, count))
            for target, (pid, url) in apps.items():
                phases.append(phase(target, pid, url, c, count))
        for target, (pid, url) in apps.items():
            phases.append(phase(f"{target}, closed loop", pid, url, 10, 300, closed_loop=True))

        # The same web process with `python -m bot worker` beside it: the web process acks and queues.
        worker, worker_log = bot.start_worker(workdir / "worker.log")
        wait_for_live_worker(redis.url)  # it reports in, and the web process's once-a-second look sees it
        both = (pid_of(bot), worker.pid)
        for c, count in ((1, 100), (10, n), (100, n)):
            phases.append(phase("bot + worker", both, bot.url, c, count))
        phases.append(phase("bot + worker, closed loop", both, bot.url, 10, 300, closed_loop=True))

        # Acks on their own core: the web process alone on core 0, everything else on core 1.
        everything_else = (os.getpid(), redis.process.pid, worker.pid)
        pin(everything_else, {1})
        pin(pid_of(bot), {0})
        server_acks: dict[int, str] = {}
        for c in (10, 100):
            before_acks = ack_histogram(bot.url)
            pinned.append(phase("bot + worker", both, bot.url, c, n))
            server_acks[c] = server_ack_p99(before_acks, ack_histogram(bot.url))
        pin(pid_of(bot), {1})
        pin(pid_of(responder), {0})
        for c in (10, 100):
            pinned.append(phase("bare Bolt, respond()", pid_of(responder), responder.url, c, n))
        pin((*everything_else, pid_of(bot), pid_of(responder)), {0, 1})

        # One workspace, one Refold key: 200 lookups beyond its rate limit wait their turn.
        before = len(refold.requests)
        burst = phase("single-key burst, bot + worker", both, bot.url, 10, 200, workspaces=1)
        arrivals = [r["at"] for r in refold.requests[before:] if r["endpoint"] == "get"]
        burst_peak = max_in_window(arrivals, 1.0)

        rss = {"web": rss_mb(pid_of(bot)), "worker": rss_mb(worker.pid)}
        worker.send_signal(signal.SIGTERM)
        worker.wait(20)
        worker_log.close()
        time.sleep(1.5)  # the web process notices the worker is gone and works alone again

        # 50 simultaneous Refreshes of one running execution.
        running_id = "f" * 24
        refold.add_execution(running_id, running_doc())
        before_calls = refold.count("get")
        value = f'{{"e":"{running_id}","a":"acme"}}'
        bodies = [
            urlencode(
                {
                    "payload": json.dumps(
                        block_actions(
                            "refresh_execution", value, slack.response_url(f"refresh-{i}"), team="T0"
                        )
                    )
                }
            )
            for i in range(50)
        ]
        asyncio.run(fire(f"{bot.url}/slack/events", bodies, 50))
        wait_for_cards(slack, [f"refresh-{i}" for i in range(50)])
        refresh_calls = refold.count("get") - before_calls

        # 100 lookups of one finished execution.
        finished_id = "e" * 24
        refold.add_execution(finished_id, errored_doc())
        before_calls = refold.count("get")
        bodies = [command_body(finished_id, "T1", slack.response_url(f"finished-{i}")) for i in range(100)]
        asyncio.run(fire(f"{bot.url}/slack/events", bodies, 10))
        wait_for_cards(slack, [f"finished-{i}" for i in range(100)])
        finished_calls = refold.count("get") - before_calls

        rss["web, after"] = rss_mb(pid_of(bot))
        rss["bare Bolt"] = rss_mb(pid_of(responder))
        rss["naive"] = rss_mb(pid_of(naive))
        rss["lean"] = rss_mb(pid_of(lean))
        stop_servers(bare, responder, naive, lean, bot)
        # Last, with the other apps gone: Redis commands and round trips per lookup, counted (not timed).
        trips = redis_trips.run_all(env, refold, slack, redis.url, workdir, TRIP_LOOKUPS)
    finally:
        stop_servers(bare, responder, naive, lean, bot)
        refold.stop()
        slack.stop()
        redis.stop()

    renders = render.run()
    write_results(
        Path(args.out),
        Results(
            phases,
            pinned,
            server_acks,
            burst,
            burst_peak,
            refresh_calls,
            finished_calls,
            rss,
            renders,
            args.latency,
            trips,
        ),
    )
    print(Path(args.out).read_text())


@dataclass
class Results:
    phases: list[Phase]
    pinned: list[Phase]
    server_acks: dict[int, str]  # pinned web process's own ack p99 bucket, by concurrency
    burst: Phase
    burst_peak: int  # most Refold calls in any 1 s during the burst
    refresh_calls: int
    finished_calls: int
    rss: dict[str, float]
    renders: list[tuple[str, float, float]]
    latency: float
    trips: list[TripReport]

    @property
    def trips_rows(self) -> list[str]:
        from bench import redis_trips

        return redis_trips.rows(self.trips)


def phase_rows(phases: list[Phase]) -> list[str]:
    lines = [
        "| target | concurrency | requests | ack p50 ms | ack p99 ms | answers/s | card p50 ms | card p99 ms "
        "| Refold calls | server CPU ms/request | server CPU | harness CPU | what the requests got |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for p in phases:
        cards = bool(p.cards_ms)
        lines.append(
            f"| {p.target} | {p.concurrency} | {p.requests} | {pct(p.acks_ms, 50):.2f} | "
            f"{pct(p.acks_ms, 99):.2f} | {p.cards_per_second if cards else p.throughput:.0f} | "
            f"{f'{pct(p.cards_ms, 50):.1f}' if cards else '–'} | {f'{pct(p.cards_ms, 99):.1f}' if cards else '–'} "
            f"| {p.refold_calls} | {p.cpu_ms_per_request:.2f} | {p.server_cpu:.0%} | {p.harness_cpu:.0%} "
            f"| {p.accounted()}{f' ({p.placeholders} placeholders first)' if p.placeholders else ''} |"
        )
    return lines


def write_results(out: Path, r: Results) -> None:
    by = {(p.target, p.concurrency): p for p in r.phases}
    pin_by = {(p.target, p.concurrency): p for p in r.pinned}
    latency_ms = r.latency * 1000
    lines = [
        "# Benchmark results",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC with `python bench/run.py` on: {machine()}.",
        f"Fake Refold latency {latency_ms:.0f} ms; {WORKSPACES} workspaces, each with its own API key; every",
        "lookup names an execution not seen before, so each costs a Refold call. Load generator, fakes,",
        "Redis and every app share the same 2 cores, so absolute numbers are noisy: compare the rows of",
        "one run. *Answers/s* counts cards from the first command sent to the last card received (acks/s",
        "for the ack-only rows); *server CPU ms/request* is the CPU of the app's processes (web and worker",
        "together) over the phase, divided by its requests.",
        "",
        "## Slash commands",
        "",
        *phase_rows(r.phases),
        "",
        "## Acks on their own core",
        "",
        "The web process alone on core 0 (`os.sched_setaffinity`, as `taskset` does); the worker, Redis,",
        "the fakes and the load generator on core 1. Bare Bolt pinned the same way (it acks and responds",
        "in its one process).",
        "",
        *phase_rows(r.pinned),
        "",
        "The pinned web process's own ack p99, from its `/metrics` histogram (time inside the server,",
        "from request to response, in the histogram's buckets): "
        + ", ".join(f"concurrency {c}: {v}" for c, v in sorted(r.server_acks.items()))
        + ". The load generator's figures above add its own wait for core 1.",
        "",
        "## The fair floor: four apps, one job",
        "",
        "The same rows as above, side by side: bare Bolt posting a static card (no lookup at all), the",
        "naive app (the docs' way), the lean app (`bench/lean_app.py`: acks at once, one Refold GET on one",
        "shared client, a card of plain dicts, one POST to the response_url, no Redis: the least any correct",
        "lookup does) and the bot. *Over Refold* is the card's latency less the fake Refold's",
        f"{latency_ms:.0f} ms; bare Bolt calls no Refold, so its card latency is shown as it is.",
        "",
        *floor_rows(r.phases, latency_ms),
        "",
        "## Single-key burst",
        "",
        "200 lookups at concurrency 10 from one workspace (one Refold key), bot + worker. Refold allows",
        f"20 calls a second per key; the most the fake saw in any second: {r.burst_peak}.",
        "",
        *phase_rows([r.burst]),
        "",
        "## Targets",
        "",
        "| target | goal | measured |",
        "|---|---|---|",
    ]

    def target(name: str, goal: str, measured: str, met: bool) -> None:
        lines.append(f"| {name} | {goal} | {measured}{'' if met else ' **(missed)**'} |")

    bare10, naive10 = by[("bare Bolt, respond()", 10)], by[("naive Bolt app", 10)]
    for label in ("bot", "bot + worker"):
        p = by[(label, 10)]
        cost = p.cpu_ms_per_request
        target(
            f"server CPU per card, concurrency 10 ({label})",
            f"≤ 1.5 × bare Bolt's ({bare10.cpu_ms_per_request:.2f} ms) and ≤ 1/8 of the naive app's "
            f"({naive10.cpu_ms_per_request:.2f} ms)",
            f"{cost:.2f} ms: {cost / bare10.cpu_ms_per_request:.1f} × bare, "
            f"1/{naive10.cpu_ms_per_request / cost:.1f} of naive",
            cost <= 1.5 * bare10.cpu_ms_per_request and cost <= naive10.cpu_ms_per_request / 8,
        )
        rate = p.cards_per_second
        target(
            f"cards/s, concurrency 10 ({label})",
            f"≥ 60 % of bare Bolt's ({bare10.cards_per_second:.0f}/s) and ≥ 5 × the naive app's "
            f"({naive10.cards_per_second:.0f}/s)",
            f"{rate:.0f}/s: {rate / bare10.cards_per_second:.0%} of bare, "
            f"{rate / naive10.cards_per_second:.1f} × naive",
            rate >= 0.6 * bare10.cards_per_second and rate >= 5 * naive10.cards_per_second,
        )
    bot_p10, bare_p10 = pin_by[("bot + worker", 10)], pin_by[("bare Bolt, respond()", 10)]
    target(
        "pinned web ack p99, concurrency 10",
        f"≤ 2 × bare Bolt's pinned ({pct(bare_p10.acks_ms, 99):.1f} ms)",
        f"{pct(bot_p10.acks_ms, 99):.1f} ms",
        pct(bot_p10.acks_ms, 99) <= 2 * pct(bare_p10.acks_ms, 99),
    )
    bot_p100, bare_p100 = pin_by[("bot + worker", 100)], pin_by[("bare Bolt, respond()", 100)]
    bare_p99 = pct(bare_p100.acks_ms, 99)
    target(
        "pinned web ack p99, concurrency 100",
        "< 3 s wherever bare Bolt's pinned is",
        f"{pct(bot_p100.acks_ms, 99):.0f} ms (bare Bolt's: {bare_p99:.0f} ms)",
        pct(bot_p100.acks_ms, 99) < 3000 or bare_p99 >= 3000,
    )
    lean = by[("lean Bolt app, closed loop", 10)]
    for label in ("bot, closed loop", "bot + worker, closed loop"):
        closed, who = by[(label, 10)], label.split(",")[0]
        cost = closed.cpu_ms_per_request
        target(
            f"server CPU per card, 10 users in a closed loop ({who})",
            f"≤ 2 × the lean app's ({lean.cpu_ms_per_request:.2f} ms)",
            f"{cost:.2f} ms: {cost / lean.cpu_ms_per_request:.2f} × lean",
            cost <= 2 * lean.cpu_ms_per_request,
        )
        for q, most in ((50, 15), (99, 40)):
            over = pct(closed.cards_ms, q) - latency_ms
            target(
                f"card p{q} over Refold's latency, 10 users in a closed loop ({who})",
                f"≤ {most} ms (the lean app's: {pct(lean.cards_ms, q) - latency_ms:.1f} ms)",
                f"{over:.1f} ms",
                over <= most,
            )
    for report in r.trips:
        before, after = report.round_trips("before"), report.round_trips("after")
        target(
            f"Redis round trips per fresh lookup ({report.mode})",
            "≤ 2 before the Refold call, ≤ 1 after",
            f"{before:.1f} before, {after:.1f} after",
            before <= 2.05 and after <= 1.05,
        )
    target(
        "single-key burst of 200 at concurrency 10",
        "200 cards, 0 busy, Refold ≤ 20 calls/s",
        f"{r.burst.outcomes['card']} cards, {r.burst.outcomes['busy']} busy, at most {r.burst_peak} calls/s",
        r.burst.outcomes["card"] == 200 and r.burst.outcomes["busy"] == 0 and r.burst_peak <= 20,
    )
    every = [*r.phases, *r.pinned, r.burst]
    unanswered = sum(p.outcomes["nothing"] for p in every)
    twice = sum(p.outcomes["answered twice"] for p in every)
    target(
        "requests answered, every phase",
        "100 %, 0 twice",
        f"{unanswered} unanswered, {twice} twice",
        unanswered == 0 and twice == 0,
    )
    target(
        "RSS per process",
        "≤ 100 MB",
        ", ".join(f"{k} {v:.0f} MB" for k, v in r.rss.items()),
        all(v <= 100 for k, v in r.rss.items() if k in ("web", "worker", "web, after")),
    )
    five_k = next(p50 for label, p50, _ in r.renders if label.startswith("5,000"))
    target("5,000-node card", "≤ 10 ms", f"{five_k:.2f} ms (p50)", five_k <= 10)
    target(
        "50 simultaneous Refreshes of one running execution",
        "1 Refold call",
        str(r.refresh_calls),
        r.refresh_calls == 1,
    )
    target(
        "100 lookups of one finished execution", "1 Refold call", str(r.finished_calls), r.finished_calls == 1
    )
    why = ROOT / "bench" / "why.md"
    if why.exists():
        lines += ["", why.read_text().strip()]
    lines += [
        "",
        REDIS_SECTION,
        "",
        f"Counted by `bench/redis_trips.py` in this run ({TRIP_LOOKUPS} lookups one at a time for each",
        "arrangement, each a new execution from a workspace the process had not seen, so its credentials",
        "are read too). Round trips are redis-py's writes, counted in the bot's processes",
        "(`bench/counted_bot.py`); commands are Redis's own count (`INFO commandstats`), a script's",
        "commands included. The job queue's round trips (a queued job's enqueue, take and finish) are",
        "shown apart from the lookup's own.",
        "",
        *r.trips_rows,
    ]
    before = ROOT / "bench" / "redis-before.md"
    if before.exists():
        lines += ["", before.read_text().strip()]
    lines += ["", "## Render (`python bench/render.py`)", "", "| card | p50 ms | p95 ms |", "|---|---|---|"]
    lines += [f"| {label} | {p50:.2f} | {p95:.2f} |" for label, p50, p95 in r.renders]
    lines += others_sections(out)
    out.write_text("\n".join(lines) + "\n")


REDIS_SECTION = "## Redis per lookup"
# The sections this script writes; any other in the file (the storm's, the follows') is kept as it is.
OWN_SECTIONS = (
    "## Slash commands",
    "## Acks on their own core",
    "## The fair floor",
    "## Single-key burst",
    "## Targets",
    "## Why the misses",
    REDIS_SECTION,
    "## Redis per lookup before",
    "## Render",
)


def others_sections(out: Path) -> list[str]:
    """Every `## ` section of the existing file that another bench wrote, in its order, unchanged."""
    if not out.exists():
        return []
    kept: list[str] = []
    keep = False
    for line in out.read_text().splitlines():
        if line.startswith("## "):
            keep = not line.startswith(OWN_SECTIONS)
            if keep:
                kept.append("")
        if keep:
            kept.append(line)
    while kept and not kept[-1].strip():
        kept.pop()
    return kept


def floor_rows(phases: list[Phase], latency_ms: float) -> list[str]:
    """Per app and load: CPU per card, card latency, and that less Refold's, split at the fake into
    the time until the Refold request arrived and the time after Refold answered."""
    lines = [
        "| app | load | server CPU ms/card | card p50 ms | card p99 ms | over Refold p50 ms "
        "| over Refold p99 ms | send → Refold request p50 / p99 ms | what the requests got |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    apps = ("bare Bolt, respond()", "naive Bolt app", "lean Bolt app", "bot", "bot + worker")
    loads = (
        ("concurrency 1", "", 1),
        ("concurrency 10, open loop", "", 10),
        ("10 users, closed loop", ", closed loop", 10),
    )
    by = {(p.target, p.concurrency): p for p in phases}
    for load, suffix, c in loads:
        for app in apps:
            p = by.get((app + suffix, c))
            if p is None:
                continue
            refold = app != "bare Bolt, respond()"
            p50, p99 = pct(p.cards_ms, 50), pct(p.cards_ms, 99)
            split = (
                f"{pct(p.to_refold_ms, 50):.1f} / {pct(p.to_refold_ms, 99):.1f}" if p.to_refold_ms else "–"
            )
            lines.append(
                f"| {app} | {load} | {p.cpu_ms_per_request:.2f} | {p50:.1f} | {p99:.1f} | "
                f"{f'{p50 - latency_ms:.1f}' if refold else '–'} | {f'{p99 - latency_ms:.1f}' if refold else '–'} "
                f"| {split} | {p.accounted()} |"
            )
    return lines


if __name__ == "__main__":
    main()
