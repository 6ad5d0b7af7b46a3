"""Follows by the thousand: many followed runs that change state over time and end. Run by hand:

    python bench/follows.py --runs 2000 --workspaces 1 --workers 1    # 2,000 in one workspace
    python bench/follows.py --runs 5000 --workspaces 50 --workers 4   # 5,000 across 50 workspaces
    python bench/follows.py --runs 200 --workspaces 2 --workers 1     # a quick look

Starts a real redis-server (free port, data in a temp directory), the loopback Refold and Slack fakes
(`tests/fakes/`; the Slack fake enforcing Slack's published limits: chat.update Tier 3, 50 a minute
per workspace, chat.postMessage about 1 a second per channel), the bot's web server in OAuth mode (one
installation and bot token per workspace, each workspace with its own Refold key) and `--workers`
`python -m bot worker` processes.

Each run is public card in one of `--channels` channels of its workspace; someone presses Follow on it
(the presses spread over `--ramp` seconds). The fake run then moves on its own clock: every 10 to 30 s
(`--gap-min`, `--gap-max`) one more node finishes (3 to 6 states in all, the last COMPLETED or ERRORED). Each state's name
carries its step (`Run <id> step <n>`), so the bench can tell which state every card shows.

Measures, from the fakes' side:
- for every change of every run, the time until its card showed it (or a later state), through the
  response_url or chat.update; p50 / p99 / max against `2 × FOLLOW_POLL_SECONDS`; final cards shown;
- Refold GETs per poll interval against the distinct runs that changed in it;
- CPU of the workers (user + system, from /proc) per poll job run (the workers' own job counter),
  also less what they spend idle (measured for 10 s before the presses);
- Redis used_memory (INFO memory) before the first press and once every press is in, per follow;
- Slack calls made and refused with 429, by method.
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import redis
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.render.buttons import encode_target  # noqa: E402
from tests.fakes.refold import FakeRefold, running_doc  # noqa: E402
from tests.fakes.slack import FakeSlack  # noqa: E402
from tests.harness import METRICS_TOKEN, BotServer, block_actions, connect, free_port, wait_for_live_worker  # noqa: E402  # noqa: E402
from tests.redis_process import RedisProcess  # noqa: E402

CLIENT_ID = "111.222"
CLIENT_SECRET = "bench-client-secret"
SHOWN = re.compile(r"Run ([0-9a-f]{10}) step (\d+)")
TICKS = os.sysconf("SC_CLK_TCK")
IDLE_SECONDS = 10.0


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (its children not counted)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


class StampingSlack(FakeSlack):
    """The Slack fake, also noting when each accepted chat.update arrived (its calls carry no time)."""

    def __init__(self) -> None:
        super().__init__()
        # (channel, ts) -> (at, text and blocks) of each accepted update of that message
        self.updates: dict[tuple[str, str], list[tuple[float, str]]] = {}
        self.stamp_lock = threading.Lock()

    def _answer(
        self, method: str, args: dict[str, Any], admins: set[str], token: str | None
    ) -> dict[str, Any]:
        answer = super()._answer(method, args, admins, token)
        if method == "chat.update" and answer.get("ok"):
            shown = json.dumps([args.get("text"), args.get("blocks")])
            with self.stamp_lock:
                where = (str(args.get("channel")), str(args.get("ts")))
                self.updates.setdefault(where, []).append((time.monotonic(), shown))
        return answer


@dataclass
class Run:
    execution_id: str
    team: str
    account: str
    channel: str
    message_ts: str
    key: str  # its response_url's key at the Slack fake
    index: int
    states: list[dict[str, Any]]
    gaps: list[float]  # seconds between successive states
    pressed_at: float = 0.0
    changed_at: list[float] = field(default_factory=list)  # when each state began (0: at the press)


@dataclass
class Bench:
    runs: int
    workspaces: int
    workers: int
    channels: int
    ramp: float
    poll_seconds: float
    cap: float
    refold_latency: float
    gap_min: float
    gap_max: float
    tmp: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="follows-")))
    planned: list[Run] = field(default_factory=list)
    pressed: list[Run] = field(default_factory=list)
    started: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    # --- set-up ---------------------------------------------------------------

    def start(self) -> None:
        self.refold = FakeRefold()
        self.refold.start()
        self.refold.latency = self.refold_latency
        self.slack = StampingSlack()
        self.slack.start()
        self.redis = RedisProcess(self.tmp).start()
        self.client = redis.Redis(port=self.redis.port)
        bot_key = Fernet.generate_key().decode()
        self.env = {
            "SLACK_BOT_TOKEN": "",
            "SLACK_CLIENT_ID": CLIENT_ID,
            "SLACK_CLIENT_SECRET": CLIENT_SECRET,
            "SLACK_API_URL": f"{self.slack.url}/api/",
            "REDIS_URL": self.redis.url,
            "CREDENTIALS_KEY": bot_key,
            "REFOLD_API_URL": self.refold.url,
            "FOLLOW_POLL_SECONDS": f"{self.poll_seconds:g}",
            "METRICS_TOKEN": METRICS_TOKEN,
            "LOG_LEVEL": "WARNING",
        }
        self.web = BotServer(self.env, self.tmp / "web.log").start()
        for w in range(self.workspaces):
            team = self.team(w)
            self.install(team)
            secret = f"tk_follows_{w:03d}"
            self.refold.api_keys.add(secret)
            connect(self.redis.url, bot_key, team=team, secret=secret, account=f"acct{w}")
        self.worker_procs: list[tuple[subprocess.Popen[bytes], Any, int]] = []
        for n in range(self.workers):
            port = free_port()
            process, log = self.web.start_worker(self.tmp / f"worker{n}.log", METRICS_PORT=str(port))
            self.worker_procs.append((process, log, port))
        wait_for_live_worker(self.redis.url)
        self.slack.enforce_limits(on=True)

    @staticmethod
    def team(w: int) -> str:
        return f"TF{w:03d}"

    def install(self, team: str) -> None:
        """The OAuth install, as a browser and Slack do it (tests/test_e2e_oauth.py's `install`)."""
        code, token = f"code-{team}", f"xoxb-follows-{team.lower()}"
        self.slack.oauth_codes[code] = {
            "ok": True, "app_id": "A1", "authed_user": {"id": "UINSTALLER"}, "scope": "commands,chat:write",
            "token_type": "bot", "access_token": token, "bot_user_id": f"UBOT{team}",
            "team": {"id": team, "name": f"Team {team}"}, "enterprise": None, "is_enterprise_install": False,
        }  # fmt: skip
        self.slack.bots[token] = {"bot_id": f"B{team}", "user_id": f"UBOT{team}", "team_id": team}
        with httpx.Client(base_url=self.web.url) as browser:
            page = browser.get("/slack/install")
            state = re.search(r"state=([0-9a-f]+)", page.text)
            assert state, "no state on the install page"
            cookie = page.headers["set-cookie"].split(";", 1)[0]
            done = browser.get(
                "/slack/oauth_redirect",
                params={"code": code, "state": state.group(1)},
                headers={"Cookie": cookie},
            )
            assert done.status_code == 200, done.text[:200]

    def plan(self) -> None:
        rng = random.Random(7)
        for n in range(self.runs):
            w = n % self.workspaces
            execution_id = uuid.uuid4().hex[:24]
            count = rng.randint(3, 6)
            end = rng.choice(["COMPLETED", "ERRORED"])
            states = []
            for k in range(count):
                last = k == count - 1
                status = end if last else "RUNNING"
                states.append(running_doc(f"Run {execution_id[:10]} step {k}", done=k,
                                          total=count - 1, status=status, linked_account_id=f"acct{w}"))  # fmt: skip
            gaps = [rng.uniform(self.gap_min, self.gap_max) for _ in range(count - 1)]
            run = Run(execution_id, self.team(w), f"acct{w}", f"C{n % self.channels:03d}",
                      f"1700000000.{n:06d}", f"f{n}", n, states, gaps)  # fmt: skip
            self.refold.add_execution(execution_id, states[0], linked_account_id=run.account)
            self.planned.append(run)

    # --- the run --------------------------------------------------------------

    def press(self, run: Run) -> int:
        card = {"type": "message", "ts": run.message_ts, "text": "card", "blocks": []}
        payload = block_actions("follow_execution", encode_target(run.execution_id, run.account),
                                self.slack.response_url(run.key), team=run.team, ephemeral=False,
                                message=card, message_ts=run.message_ts)  # fmt: skip
        payload["channel"]["id"] = payload["container"]["channel_id"] = run.channel
        try:
            return self.web.interaction(payload).status_code
        except httpx.HTTPError:
            return 0

    def changer(self, stop: threading.Event) -> None:
        """Moves each run to its next state at its time (a heap of due changes)."""
        due: list[tuple[float, int, int]] = []
        seen = 0
        while not stop.is_set():
            with self.lock:
                fresh = self.pressed[seen:]
                seen = len(self.pressed)
            for run in fresh:
                heapq.heappush(due, (run.pressed_at + run.gaps[0], run.index, 1))
            now = time.monotonic()
            while due and due[0][0] <= now:
                _, index, k = heapq.heappop(due)
                run = self.planned[index]
                with self.refold.lock:
                    self.refold.executions[run.execution_id].document = run.states[k]
                run.changed_at.append(time.monotonic())
                if k + 1 < len(run.states):
                    heapq.heappush(due, (run.changed_at[-1] + run.gaps[k], index, k + 1))
            time.sleep(0.05)

    def run(self) -> dict[str, Any]:
        self.start()
        self.plan()
        time.sleep(2)
        memory_before = int(self.client.info("memory")["used_memory"])
        # What the workers spend with nothing to do (saq's polling, heartbeats, sweeps): taken off the
        # CPU per poll, which is about the polls.
        idle_from = {p.pid: cpu_seconds(p.pid) for p, _, _ in self.worker_procs}
        time.sleep(IDLE_SECONDS)
        cpu_before = {p.pid: cpu_seconds(p.pid) for p, _, _ in self.worker_procs}
        idle_per_second = sum(cpu_before[pid] - idle_from[pid] for pid in idle_from) / IDLE_SECONDS
        jobs_before = self.jobs()
        commands_before = self.commands()
        stop = threading.Event()
        changer = threading.Thread(target=self.changer, args=(stop,), daemon=True)
        changer.start()
        self.started = time.monotonic()
        gap = self.ramp / max(1, self.runs)
        statuses: Counter[int] = Counter()
        for n, run in enumerate(self.planned):
            time.sleep(max(0.0, self.started + n * gap - time.monotonic()))
            run.pressed_at = time.monotonic()
            run.changed_at = [run.pressed_at]
            statuses[self.press(run)] += 1
            with self.lock:
                self.pressed.append(run)
        print(f"{self.runs} follows pressed in {time.monotonic() - self.started:.0f} s", flush=True)
        time.sleep(5)
        memory_all_in = int(self.client.info("memory")["used_memory"])
        live = int(self.client.zcard("refold-bot:follows-live"))
        families = self.families()
        # Until every run's final state is on its card, or `cap` after the last change was due.
        last_due = max(r.pressed_at + sum(r.gaps) for r in self.planned)
        deadline = last_due + self.cap
        while time.monotonic() < deadline:
            if all(self.final_shown(r) for r in self.planned):
                break
            time.sleep(2)
        ended = time.monotonic() - self.started
        stop.set()
        changer.join()
        cpu = sum(cpu_seconds(p.pid) - cpu_before[p.pid] for p, _, _ in self.worker_procs)
        jobs = self.jobs() - jobs_before
        polls = jobs["poll"]
        commands = self.commands() - commands_before
        return {
            "statuses": statuses,
            "memory": (memory_before, memory_all_in, live),
            "families": families,
            "cpu": cpu,
            "idle_cpu": idle_per_second * ended,
            "polls": polls,
            "jobs": jobs,
            "commands": commands,
            "ended": ended,
            "worker_logs": [(self.tmp / f"worker{n}.log") for n in range(self.workers)],
        }

    def polls(self) -> int:
        """Poll jobs the workers ran (their own counter, every result)."""
        return self.jobs()["poll"]

    def jobs(self) -> Counter[str]:
        """Jobs the workers ran, by kind (their own counter, every result)."""
        total: Counter[str] = Counter()
        pattern = re.compile(
            r'^refold_bot_jobs_total\{kind="([a-z-]+)",result="[a-z]+"\} (\S+)$', re.MULTILINE
        )
        for _, _, port in self.worker_procs:
            try:
                text = httpx.get(f"http://127.0.0.1:{port}/metrics",
                                 headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=10).text  # fmt: skip
            except httpx.HTTPError:
                continue
            for kind, value in pattern.findall(text):
                total[kind] += int(float(value))
        return total

    def commands(self) -> Counter[str]:
        """Redis commands run so far, by command (INFO commandstats)."""
        stats = self.client.info("commandstats")
        counted = {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}
        # The bench's own reads (memory by key family, INFO) are not the bot's.
        return Counter(
            {name: n for name, n in counted.items() if name not in ("memory|usage", "scan", "info")}
        )

    def families(self) -> dict[str, tuple[int, int]]:
        names = list(self.client.scan_iter(count=2000))
        with self.client.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.memory_usage(name, samples=0)
            sizes = pipe.execute()
        counts: Counter[str] = Counter()
        size: Counter[str] = Counter()
        for name, used in zip(names, sizes, strict=True):
            kind = re.sub(r"[0-9a-f]{8,}", "<id>", name.decode(errors="replace"))
            kind = re.sub(r":\d+\b", ":<n>", re.sub(r"\bTF\d{3}\b", "<team>", kind))
            counts[kind] += 1
            size[kind] += int(used or 0)
        return {kind: (counts[kind], size[kind]) for kind in counts}

    # --- what the cards showed ------------------------------------------------

    def shown(self, run: Run) -> list[tuple[float, int]]:
        """(when, step) of every update of this run's card, in time order."""
        seen = []
        tag = run.execution_id[:10]
        for answer in self.slack.responses_to(run.key):
            for found in SHOWN.finditer(json.dumps([answer.get("text"), answer.get("blocks")])):
                if found.group(1) == tag:
                    seen.append((float(answer["_at"]), int(found.group(2))))
                    break
        with self.slack.stamp_lock:
            updates = list(self.slack.updates.get((run.channel, run.message_ts), ()))
        for at, text in updates:
            for found in SHOWN.finditer(text):
                if found.group(1) == tag:
                    seen.append((at, int(found.group(2))))
                    break
        return sorted(seen)

    def final_shown(self, run: Run) -> bool:
        shown = self.shown(run)
        return bool(shown) and shown[-1][1] == len(run.states) - 1

    def stop(self) -> None:
        for process, log, _ in self.worker_procs:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()  # a worker still deep in a backlog: its figures are already taken
                    process.wait(10)
            log.close()
        self.web.stop()
        self.client.close()
        self.redis.stop()
        self.refold.stop()
        self.slack.stop()


def report(bench: Bench, got: dict[str, Any], command: str) -> str:
    delays, late_finals, missing_finals = [], 0, 0
    limit = 2 * bench.poll_seconds
    changes: list[tuple[float, str]] = []
    for run in bench.planned:
        shown = bench.shown(run)
        for k, at in enumerate(run.changed_at):
            if k == 0:
                continue
            changes.append((at, run.execution_id))
            first = next((when for when, step in shown if step >= k and when >= at - 0.5), None)
            delays.append((first - at) if first is not None else float("inf"))
        if not shown or shown[-1][1] != len(run.states) - 1:
            missing_finals += 1
        elif len(run.changed_at) == len(run.states):
            final_at = next(when for when, step in shown if step == len(run.states) - 1)
            late_finals += final_at - run.changed_at[-1] > limit
    finite = [d for d in delays if d != float("inf")]
    within = sum(d <= limit for d in delays)
    # Refold GETs of an execution, and distinct runs changing, per poll interval over the whole run.
    with bench.refold.lock:
        gets = [r["at"] for r in bench.refold.requests if r["method"] == "GET" and "/execution/" in r["path"]]
    start, end = bench.started, bench.started + got["ended"]
    windows = max(1, int((end - start) // bench.poll_seconds))
    get_counts = Counter[int]()
    for at in gets:
        if start <= at < end:
            get_counts[int((at - start) // bench.poll_seconds)] += 1
    changing: dict[int, set[str]] = {}
    for at, rid in changes:
        changing.setdefault(int((at - start) // bench.poll_seconds), set()).add(rid)
    busy = [w for w in range(windows) if changing.get(w)]
    calls_busy = [get_counts[w] for w in busy]
    changing_busy = [len(changing[w]) for w in busy]
    with bench.slack.lock:
        made = Counter(c.method for c in bench.slack.calls) + Counter(c.method for c in bench.slack.refused)
        refused = Counter(c.method for c in bench.slack.refused)
    responses = sum(len(bench.slack.responses_to(r.key)) for r in bench.planned)
    before, all_in, live = got["memory"]
    polls, cpu = got["polls"], got["cpu"]
    logs = [p.read_text(errors="replace") for p in got["worker_logs"]]
    rows = [
        ("follows pressed (HTTP 200 / other)", f"{got['statuses'][200]} / {sum(got['statuses'].values()) - got['statuses'][200]}"),
        ("changes (after the first state)", f"{len(delays)}"),
        (f"changes on their card within 2 poll intervals ({limit:g} s)", f"{within} ({100 * within / max(1, len(delays)):.1f} %)"),
        ("change to card, p50 / p99 / max s", f"{percentile(finite, 0.5):.1f} / {percentile(delays, 0.99):.1f} / {max(delays, default=0):.1f}"),
        ("changes never shown", f"{len(delays) - len(finite)}"),
        ("final cards shown / runs", f"{bench.runs - missing_finals} / {bench.runs} ({late_finals} later than {limit:g} s)"),
        ("Refold execution GETs / changes, whole run", f"{len(gets)} / {len(changes)}"),
        ("per poll interval with changes: GETs mean / max; runs changing mean / max",
         f"{sum(calls_busy) / max(1, len(busy)):.0f} / {max(calls_busy, default=0)}; "
         f"{sum(changing_busy) / max(1, len(busy)):.0f} / {max(changing_busy, default=0)}"),
        ("jobs the workers ran (their counter), by kind", ", ".join(f"{k} {n}" for k, n in got["jobs"].most_common())),
        ("worker CPU ms per job of any kind, less idle",
         f"{1000 * (cpu - got['idle_cpu']) / max(1, sum(got['jobs'].values())):.2f}"),
        ("worker CPU s, total / of it idle (measured before the presses)", f"{cpu:.1f} / {got['idle_cpu']:.1f}"),
        ("worker CPU ms per poll, all / less idle",
         f"{1000 * cpu / max(1, polls):.2f} / {1000 * (cpu - got['idle_cpu']) / max(1, polls):.2f}"),
        ("Redis commands of every bot process per poll job (INFO commandstats): the most run",
         f"{sum(got['commands'].values()) / max(1, polls):.1f}: "
         + ", ".join(f"{c} {n / max(1, polls):.1f}" for c, n in got["commands"].most_common(6))),
        ("Redis used_memory before / with every follow in (follows live)",
         f"{before / 1e6:.2f} / {all_in / 1e6:.2f} MB ({live})"),
        ("Redis memory per live follow", f"{(all_in - before) / max(1, live) / 1e3:.2f} kB"),
        ("response_url posts / chat.update accepted", f"{responses} / {sum(len(u) for u in bench.slack.updates.values())}"),
        ("Slack calls made / answered 429", f"{sum(made.values())} / {sum(refused.values())}"),
        *((f"  {m}: made / 429", f"{made[m]} / {refused[m]}") for m in sorted(made)),
        ("worker log lines: WARNING / ERROR / Traceback",
         " / ".join(str(sum(log.count(w) for log in logs)) for w in (" WARNING ", " ERROR ", "Traceback"))),
        ("run over, s from the first press", f"{got['ended']:.0f}"),
    ]  # fmt: skip
    top = sorted(got["families"].items(), key=lambda kv: -kv[1][1])[:8]
    lines = [
        f"Follows: {bench.runs} runs in {bench.workspaces} workspace(s), {bench.workers} worker(s), "
        f"FOLLOW_POLL_SECONDS {bench.poll_seconds:g}, Refold latency {bench.refold_latency * 1000:g} ms "
        f"(`{command}`)",
        "",
        "| measure | value |",
        "|---|---|",
        *(f"| {name} | {value} |" for name, value in rows),
        "",
        "Redis with every follow in, the biggest key families (keys, MEMORY USAGE): "
        + ", ".join(f"`{k}` {n} × {b / max(1, n):.0f} B" for k, (n, b) in top),
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--workspaces", type=int, default=1)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--channels", type=int, default=20, help="channels per workspace the cards are in")
    parser.add_argument("--ramp", type=float, default=60.0, help="seconds over which the follows are pressed")
    parser.add_argument("--poll-seconds", type=float, default=5.0, help="FOLLOW_POLL_SECONDS")
    parser.add_argument("--cap", type=float, default=300.0, help="longest wait after the last change, s")
    parser.add_argument("--refold-latency", type=float, default=0.05, help="seconds")
    parser.add_argument("--gap-min", type=float, default=10.0, help="shortest time a run stays in a state, s")
    parser.add_argument("--gap-max", type=float, default=30.0, help="longest time a run stays in a state, s")
    args = parser.parse_args()
    bench = Bench(args.runs, args.workspaces, args.workers, args.channels, args.ramp, args.poll_seconds,
                  args.cap, args.refold_latency, args.gap_min, args.gap_max)  # fmt: skip
    command = "python " + " ".join(["bench/follows.py", *sys.argv[1:]])
    started = datetime.now(UTC)
    try:
        got = bench.run()
        print(f"\nMeasured {started:%Y-%m-%d %H:%M} UTC.\n", flush=True)
        print(report(bench, got, command), flush=True)
    finally:
        bench.stop()
    print(f"logs: {bench.tmp}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
