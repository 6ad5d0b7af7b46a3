"""Redis commands and round trips per fresh lookup (`/execution <id>` to its card), before and after
the Refold call.

    python bench/redis_trips.py [--lookups 50]     # prints the tables; bench/run.py includes them

Starts its own Redis and fakes, then the bot through bench/counted_bot.py, which writes down every
round trip redis-py sends (a pipeline or a script is one). Lookups go one at a time, each naming an
execution not seen before from a workspace not seen before (its credentials not in the process's
cache either: the dearest case), first with the web process making the cards, then with a worker.
A round trip is "before" when it left between the command's send and its Refold request, "after"
from then until the next command. What the bot sends with no lookup at all (the worker check, the
job queue's polls) is measured over an idle stretch first and taken off at its rate.

Commands are also counted by Redis itself: `INFO commandstats` before and after, the same idle rate
taken off (Redis counts the commands a script runs, and the script itself as EVALSHA).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import answered, command_body, fire, start_world  # noqa: E402
from tests.fakes.refold import FakeRefold, errored_doc  # noqa: E402
from tests.fakes.slack import FakeSlack  # noqa: E402
from tests.harness import BotServer, wait_for_live_worker  # noqa: E402

IDLE_SECONDS = 4.0
SETTLE_SECONDS = 0.4  # after a card: the bookkeeping the reply does not wait for
_ID = re.compile(r"[0-9a-f]{16,}|T\d+")


@dataclass
class TripReport:
    mode: str
    lookups: int
    trips: dict[tuple[str, str], float] = field(default_factory=dict)  # (when, what) -> per lookup
    commands: dict[str, float] = field(default_factory=dict)  # INFO commandstats, per lookup

    @property
    def commands_total(self) -> float:
        return sum(self.commands.values())

    def round_trips(self, when: str, *, job_queue: bool = False) -> float:
        """Per lookup, `when` ("before" or "after" the Refold call): the lookup's own, or the job
        queue's (a queued job's own transport: enqueue, take, finish)."""
        return sum(v for (w, what), v in self.trips.items() if w == when and is_job_queue(what) == job_queue)


def new_id(i: int) -> str:
    """An execution ID no run has used: 24 hex characters."""
    return f"{time.time_ns():016x}{i:08x}"[-24:]


def label(cmds: list[list[str]]) -> str:
    """One round trip by its first command; a transaction by the first command inside it."""
    if cmds[0][0] == "MULTI" and len(cmds) > 1:
        return f"MULTI {what(*cmds[1])} …"
    return what(*cmds[0]) + (" …" if len(cmds) > 1 else "")


def is_job_queue(label: str) -> bool:
    return " saq:" in label


def what(name: str, key: str) -> str:
    """A command and the kind of key it touched, IDs taken out: `GET refold-bot:exec`."""
    parts = key.split(":")
    if key.startswith("saq:job:"):
        kind = "saq:job"
    elif key.startswith("saq:"):
        kind = "saq:" + parts[-1]
    elif key.startswith("refold-bot:") and len(parts) > 1:
        kind = "refold-bot:" + parts[1]
    else:
        kind = _ID.sub("<id>", key)
    return f"{name} {kind}".strip()


def commandstats(client: redis.Redis) -> collections.Counter[str]:
    stats = client.info("commandstats")
    return collections.Counter(
        {
            name.removeprefix("cmdstat_"): int(v["calls"])
            for name, v in stats.items()
            if name != "cmdstat_info"
        }
    )


def read_trips(log: Path, since: float, until: float = float("inf")) -> list[tuple[float, list[list[str]]]]:
    found = []
    for line in log.read_text().splitlines():
        entry = json.loads(line)
        if since <= entry["at"] < until:
            found.append((entry["at"], entry["cmds"]))
    return found


def measure(
    mode: str,
    env: dict[str, str],
    refold: FakeRefold,
    slack: FakeSlack,
    redis_url: str,
    workdir: Path,
    lookups: int,
    first_workspace: int,
) -> TripReport:
    log = workdir / f"trips-{mode}.jsonl"
    log.touch()
    counted = [sys.executable, str(ROOT / "bench" / "counted_bot.py")]
    bot = BotServer({**env, "REDIS_TRIPS_LOG": str(log)}, workdir / f"counted-{mode}.log")
    bot.start(argv=[*counted, "serve"])
    worker = None
    if mode == "bot + worker":
        worker = subprocess.Popen(
            [*counted, "worker"],
            env=bot.env,
            cwd=ROOT / "tests",
            stdout=(workdir / "counted-worker.log").open("ab"),
            stderr=subprocess.STDOUT,
        )
        wait_for_live_worker(redis_url)
    client = redis.Redis.from_url(redis_url)
    url = f"{bot.url}/slack/events"
    try:
        # Warm up: connections, scripts loaded, first imports.
        for i in range(3):
            eid = new_id(i)
            refold.add_execution(eid, errored_doc())
            key = f"warm-{mode}-{i}"
            asyncio.run(fire(url, [command_body(eid, f"T{199 - i}", slack.response_url(key))], 1))
            _wait(lambda key=key: answered(slack, key) is not None)
        time.sleep(1.0)
        idle_from, stats_before = time.monotonic(), commandstats(client)
        time.sleep(IDLE_SECONDS)
        idle_stats = commandstats(client) - stats_before
        idle_span = time.monotonic() - idle_from
        idle_trips = collections.Counter(
            label(cmds) for _, cmds in read_trips(log, idle_from, idle_from + idle_span) if cmds
        )

        ids = [new_id(i) for i in range(lookups)]
        for eid in ids:
            refold.add_execution(eid, errored_doc())
        started, stats_start = time.monotonic(), commandstats(client)
        windows: list[tuple[float, float]] = []  # (sent, Refold asked) per lookup
        for i, eid in enumerate(ids):
            key = f"trips-{mode}-{i}"
            sent = time.monotonic()
            body = command_body(eid, f"T{first_workspace + i}", slack.response_url(key))
            asyncio.run(fire(url, [body], 1))
            _wait(lambda key=key: answered(slack, key) is not None)
            asked = next(r["at"] for r in refold.requests if r["path"].endswith(eid))
            windows.append((sent, asked))
            time.sleep(SETTLE_SECONDS)
        ended = time.monotonic()
        stats = commandstats(client) - stats_start
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(20)
        bot.stop()
        client.close()

    span = ended - started
    per_second = {name: n / idle_span for name, n in idle_stats.items()}
    commands = {
        name: (n - per_second.get(name, 0.0) * span) / lookups
        for name, n in stats.items()
        if (n - per_second.get(name, 0.0) * span) / lookups >= 0.1
    }
    counts: collections.Counter[tuple[str, str]] = collections.Counter()
    bounds = [*(w[0] for w in windows[1:]), ended]
    for at, cmds in read_trips(log, started):
        if not cmds:
            continue
        for (sent, asked), until in zip(windows, bounds, strict=True):
            if sent <= at < until:
                counts[("before" if at < asked else "after", label(cmds))] += 1
                break
    # Trips the idle stretch saw at a steady rate belong to no lookup.
    before_span = sum(asked - sent for sent, asked in windows)
    after_span = span - before_span
    trips: dict[tuple[str, str], float] = {}
    for (when, sent), n in counts.items():
        idle_rate = idle_trips.get(sent, 0) / idle_span
        value = (n - idle_rate * (before_span if when == "before" else after_span)) / lookups
        if value >= 0.1:
            trips[(when, sent)] = value
    return TripReport(mode, lookups, trips, commands)


def _wait(done: object, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise RuntimeError("no card arrived")
        time.sleep(0.002)


def rows(reports: list[TripReport]) -> list[str]:
    lines = [
        "| process | lookups | Redis commands per lookup (`INFO commandstats`) | round trips before the Refold "
        "call | round trips after | the job queue's round trips (before + after) |",
        "|---|---|---|---|---|---|",
    ]
    for r in reports:
        queue = r.round_trips("before", job_queue=True) + r.round_trips("after", job_queue=True)
        lines.append(
            f"| {r.mode} | {r.lookups} | {r.commands_total:.1f} | {r.round_trips('before'):.1f} | "
            f"{r.round_trips('after'):.1f} | {f'{queue:.1f}' if queue else '–'} |"
        )
    for r in reports:
        lines += [
            "",
            f"{r.mode}: round trips per lookup, by what they sent (the first command of a pipeline)",
            "",
            "| when | round trip | per lookup |",
            "|---|---|---|",
        ]
        for (when, sent), value in sorted(r.trips.items(), key=lambda kv: (kv[0][0] != "before", kv[0][1])):
            lines.append(f"| {when} the Refold call | `{sent}` | {value:.2f} |")
        lines += [
            "",
            f"{r.mode}: Redis commands per lookup (`INFO commandstats`, a script's own commands included)",
            "",
            "| command | per lookup |",
            "|---|---|",
        ]
        for name, value in sorted(r.commands.items(), key=lambda kv: -kv[1]):
            lines.append(f"| {name.upper()} | {value:.2f} |")
    return lines


def run_all(
    env: dict[str, str], refold: FakeRefold, slack: FakeSlack, redis_url: str, workdir: Path, lookups: int
) -> list[TripReport]:
    return [
        measure("bot", env, refold, slack, redis_url, workdir, lookups, 0),
        measure("bot + worker", env, refold, slack, redis_url, workdir, lookups, lookups),
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lookups", type=int, default=50)
    parser.add_argument("--latency", type=float, default=0.1)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="trips-"))
    redis_process, refold, slack, env = start_world(workdir, args.latency)
    try:
        reports = run_all(env, refold, slack, redis_process.url, workdir, args.lookups)
    finally:
        refold.stop()
        slack.stop()
        redis_process.stop()
    print("\n".join(rows(reports)))


if __name__ == "__main__":
    main()
