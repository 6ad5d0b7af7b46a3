"""Chaos soak: mixed traffic from many workspaces while the parts under the bot fail. Run by hand:

    python bench/soak.py                 # 10 minutes, 50 workspaces; prints the table
    python bench/soak.py --minutes 2     # a shorter look

Starts a real redis-server (AOF on), the loopback Refold and Slack fakes, two web processes
(`python -m bot serve`) and two workers (`python -m bot worker`). For the whole run it sends signed
slash commands (lookups, follows), button presses (Refresh, Rerun) and Refold webhooks (with one
storm of 40), spread over both web processes, while it:

- kills a worker with SIGKILL every minute and starts a new one;
- kills Redis with SIGKILL twice and brings it back from its AOF 2 s later;
- makes Refold answer 503, then 429, to every call for a burst, every 45 s;
- makes Slack answer `ratelimited` (429) to `chat.update` for a burst, every minute.

Then it waits for the stragglers and counts from the fakes' side what was acked, answered, finished,
repeated and lost. Webhook deliveries that are not answered 200 are sent again up to 3 times, as
Refold does.
"""

from __future__ import annotations

import argparse
import json
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
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.render.buttons import encode_target  # noqa: E402
from tests.fakes.refold import FakeRefold, Fault, errored_doc, running_doc  # noqa: E402
from tests.fakes.slack import FakeSlack  # noqa: E402
from tests.harness import BotServer, block_actions, connect, wait_for_live_worker  # noqa: E402
from tests.redis_process import RedisProcess  # noqa: E402

ACK_LIMIT = 3.0
# The mix of traffic, by weight.
MIX = {"lookup": 40, "refresh": 20, "follow": 10, "rerun": 10, "webhook": 20}
ROUTED = 10  # workspaces that turn alerts on


def new_id() -> str:
    return uuid.uuid4().hex[:24]


def team_of(i: int) -> str:
    return f"TS{i:03d}"


def key_of(i: int) -> str:
    return f"tk_soak_key_{i:03d}"


@dataclass
class Sent:
    kind: str
    key: str  # the response_url key, or the execution ID for a webhook
    team: str
    execution_id: str
    acked: bool
    ack_seconds: float


@dataclass
class Soak:
    minutes: float
    workspaces: int
    rate: float  # actions a second
    tmp: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="soak-")))
    sent: list[Sent] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    events: list[str] = field(default_factory=list)
    routes: dict[str, str] = field(default_factory=dict)  # team -> route ID
    started: float = 0.0
    webhook_attempts: int = 0

    def note(self, what: str) -> None:
        line = f"+{time.monotonic() - self.started:6.1f}s  {what}"
        print(line, flush=True)
        self.events.append(line)

    # --- set-up ---------------------------------------------------------------

    def start(self) -> None:
        self.refold = FakeRefold().start()
        self.slack = FakeSlack().start()
        self.slack.admins.add("U1")
        self.refold.latency = 0.05
        self.redis = RedisProcess(self.tmp).start()
        self.bot_key = Fernet.generate_key().decode()
        for i in range(self.workspaces):
            self.refold.api_keys.add(key_of(i))
            connect(self.redis.url, self.bot_key, team=team_of(i), secret=key_of(i), account=f"acct{i}")
        env = {
            "SLACK_API_URL": f"{self.slack.url}/api/",
            "REDIS_URL": self.redis.url,
            "CREDENTIALS_KEY": self.bot_key,
            "REFOLD_API_URL": self.refold.url,
            "FOLLOW_POLL_SECONDS": "1",
            "LOG_LEVEL": "WARNING",
        }
        self.webs = [BotServer(env, self.tmp / f"web{n}.log").start() for n in range(2)]
        self.workers: list[subprocess.Popen[bytes]] = []
        self.worker_logs: list[Any] = []
        for _ in range(2):
            self.start_worker()
        wait_for_live_worker(self.redis.url)
        for i in range(ROUTED):
            self.turn_alerts_on(i)

    def start_worker(self) -> None:
        process, log = self.webs[0].start_worker(self.tmp / f"worker{len(self.workers)}.log")
        self.workers.append(process)
        self.worker_logs.append(log)

    def turn_alerts_on(self, i: int) -> None:
        key = f"alerts-{i}"
        self.webs[0].command("alerts on errored", self.slack.response_url(key), team=team_of(i))
        (reply,) = self.slack.wait_responses(key, timeout=20)
        found = re.search(r"/refold/webhooks/([0-9a-f]{32})", str(reply.get("text")))
        assert found, f"no route in the reply: {reply.get('text')}"
        self.routes[team_of(i)] = found.group(1)

    # --- traffic --------------------------------------------------------------

    def web(self) -> BotServer:
        return random.choice(self.webs)

    def record(self, kind: str, key: str, team: str, execution_id: str, send: Callable[[], int]) -> None:
        begun = time.monotonic()
        try:
            status = send()
        except httpx.HTTPError:
            status = 0
        elapsed = time.monotonic() - begun
        with self.lock:
            self.sent.append(
                Sent(kind, key, team, execution_id, status == 200 and elapsed < ACK_LIMIT, elapsed)
            )

    def lookup(self, i: int) -> None:
        execution_id, key = new_id(), f"l-{uuid.uuid4().hex[:10]}"
        self.refold.add_execution(
            execution_id, errored_doc(linked_account_id=f"acct{i}"), linked_account_id=f"acct{i}"
        )
        self.record("lookup", key, team_of(i), execution_id,
                    lambda: self.web().command(execution_id, self.slack.response_url(key), team=team_of(i)).status_code)  # fmt: skip

    def refresh(self, i: int) -> None:
        execution_id, key = new_id(), f"r-{uuid.uuid4().hex[:10]}"
        account = f"acct{i}"
        self.refold.add_execution(
            execution_id, running_doc(linked_account_id=account), linked_account_id=account
        )
        payload = block_actions("refresh_execution", encode_target(execution_id, account),
                                self.slack.response_url(key), team=team_of(i))  # fmt: skip
        self.record(
            "refresh", key, team_of(i), execution_id, lambda: self.web().interaction(payload).status_code
        )

    def follow(self, i: int) -> None:
        execution_id, key = new_id(), f"f-{uuid.uuid4().hex[:10]}"
        account = f"acct{i}"
        steps = [running_doc(done=d, total=4, linked_account_id=account) for d in (1, 2, 3)]
        done = running_doc(done=4, total=4, status="COMPLETED", linked_account_id=account)
        self.refold.add_execution(
            execution_id, steps[0], linked_account_id=account, progression=[*steps, done]
        )
        self.record("follow", key, team_of(i), execution_id,
                    lambda: self.web().command(f"{execution_id} follow", self.slack.response_url(key),
                                               team=team_of(i)).status_code)  # fmt: skip

    def rerun(self, i: int) -> None:
        execution_id, key = new_id(), f"x-{uuid.uuid4().hex[:10]}"
        account = f"acct{i}"
        self.refold.add_execution(
            execution_id, errored_doc(linked_account_id=account), linked_account_id=account
        )
        payload = block_actions("rerun_execution", encode_target(execution_id, account),
                                self.slack.response_url(key), team=team_of(i), ephemeral=False)  # fmt: skip
        self.record(
            "rerun", key, team_of(i), execution_id, lambda: self.web().interaction(payload).status_code
        )

    def webhook(self, i: int, name: str = "Nightly sync") -> None:
        i %= ROUTED
        team, execution_id = team_of(i), new_id()
        self.refold.add_execution(execution_id, errored_doc(name=name, linked_account_id=f"acct{i}"),
                                  linked_account_id=f"acct{i}")  # fmt: skip
        event = {"linked_account_id": f"acct{i}", "instance_id": execution_id, "event": "Workflow Errored",
                 "workflow_id": "6495792b9b6ca6d77a17e513", "workflow_name": name, "status": "ERRORED"}  # fmt: skip

        slowest, status = 0.0, 0
        # Refold's own retries: up to 3 more times when the answer is not 200.
        for attempt in range(4):
            sent_at = time.monotonic()
            try:
                status = self.web().webhook(self.routes[team], event, key=key_of(i)).status_code
            except httpx.HTTPError:
                status = 0
            slowest = max(slowest, time.monotonic() - sent_at)
            if status == 200:
                break
            time.sleep(1.0 + attempt)
        with self.lock:
            self.webhook_attempts += attempt + 1
            self.sent.append(Sent("webhook", execution_id, team, execution_id, status == 200, slowest))

    # --- faults ---------------------------------------------------------------

    def chaos(self, stop: threading.Event) -> None:
        total = self.minutes * 60
        redis_kills = [total * 0.3, total * 0.7]
        next_worker_kill, next_refold, next_slack, storm_at = 60.0, 45.0, 30.0, total * 0.5
        refold_faults = [503, 429]
        while not stop.wait(0.25):
            now = time.monotonic() - self.started
            if now >= next_worker_kill:
                next_worker_kill += 60
                alive = [w for w in self.workers if w.poll() is None]
                if alive:
                    victim = alive[0]
                    victim.send_signal(signal.SIGKILL)
                    victim.wait(10)
                    self.start_worker()
                    self.note("killed a worker (SIGKILL) and started a new one")
            if redis_kills and now >= redis_kills[0]:
                redis_kills.pop(0)
                self.redis.kill()
                self.note("killed Redis (SIGKILL)")
                time.sleep(2)
                self.redis.start()
                self.note("Redis back from its AOF")
            if now >= next_refold:
                next_refold += 45
                status = refold_faults[0]
                refold_faults.reverse()
                headers = {"Retry-After": "1"} if status == 429 else {}
                self.refold.inject(Fault(status=status, body='{"message":"soak"}', times=25, headers=headers))
                self.note(f"Refold answers {status} to its next 25 calls")
            if now >= next_slack:
                next_slack += 60
                self.slack.fail("chat.update", "ratelimited", status=429, retry_after=1, times=10)
                self.note("Slack answers 429 to the next 10 chat.update calls")
            if storm_at and now >= storm_at:
                storm_at = 0.0
                self.note("storm: 40 errored webhooks for one route")
                names = ["Nightly sync", "Export contact", "Import deals"]
                with ThreadPoolExecutor(8) as pool:
                    for n in range(40):
                        pool.submit(self.webhook, 0, names[n % 3])

    # --- the run --------------------------------------------------------------

    def run(self) -> str:
        self.started = time.monotonic()
        self.start()
        self.note(f"set up: {self.workspaces} workspaces, 2 web processes, 2 workers, {ROUTED} alert routes")
        stop = threading.Event()
        chaos = threading.Thread(target=self.chaos, args=(stop,), daemon=True)
        self.started = time.monotonic()
        chaos.start()
        kinds = list(MIX)
        weights = list(MIX.values())
        actions: dict[str, Callable[[int], None]] = {
            "lookup": self.lookup, "refresh": self.refresh, "follow": self.follow,
            "rerun": self.rerun, "webhook": self.webhook,
        }  # fmt: skip
        end = self.started + self.minutes * 60
        with ThreadPoolExecutor(16) as pool:
            tick = self.started
            while time.monotonic() < end:
                kind = random.choices(kinds, weights)[0]
                pool.submit(actions[kind], random.randrange(self.workspaces))
                tick += 1 / self.rate
                time.sleep(max(0.0, tick - time.monotonic()))
            stop.set()
            chaos.join()
        self.note("traffic over; waiting for the stragglers")
        self.settle(deadline=time.monotonic() + 180)
        return self.report()

    # --- counting -------------------------------------------------------------

    def answered(self, s: Sent) -> bool:
        if s.kind == "webhook":
            return bool(self.posts_of(s.execution_id))
        return bool(self.slack.responses_to(s.key))

    def finished(self, s: Sent) -> bool:
        replies = self.slack.responses_to(s.key)
        if not replies:
            return False
        last = json.dumps(replies[-1])
        # A final card, or an error said in words (the follow never started).
        return ("COMPLETED" in last and "unfollow_execution" not in last) or "blocks" not in replies[-1]

    def posts_of(self, execution_id: str) -> list[dict[str, Any]]:
        """Channel messages carrying this run's card (webhook IDs appear nowhere else)."""
        return [
            c.args
            for c in self.slack.calls_to("chat.postMessage")
            if execution_id in json.dumps(c.args.get("blocks") or "")
        ]

    def settle(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            with self.lock:
                pending = [s for s in self.sent if s.acked and not self.answered(s)]
                follows = [s for s in self.sent if s.kind == "follow" and s.acked and not self.finished(s)]
            if not pending and not follows:
                return
            time.sleep(1)

    def report(self) -> str:
        with self.lock:
            sent = list(self.sent)
        by_kind: dict[str, list[Sent]] = {}
        for s in sent:
            by_kind.setdefault(s.kind, []).append(s)
        rows = []
        for kind in MIX:
            items = by_kind.get(kind, [])
            acked = sum(s.acked for s in items)
            answered = sum(self.answered(s) for s in items if s.acked)
            if kind == "webhook":
                dup = sum(len(self.posts_of(s.execution_id)) > 1 for s in items)
            elif kind == "rerun":
                reruns = Counter(old for old, _ in self.refold.reruns)
                dup = sum(reruns[s.execution_id] > 1 for s in items)
            elif kind == "follow":
                dup = 0
            else:
                dup = sum(len(self.slack.responses_to(s.key)) > 1 for s in items)
            worst = max((s.ack_seconds for s in items), default=0.0)
            rows.append(f"| {kind} | {len(items)} | {acked} | {worst:.2f} | {answered} | {dup} |")
        follows = [s for s in by_kind.get("follow", []) if s.acked]
        finished = sum(self.finished(s) for s in follows)
        completed = sum("COMPLETED" in json.dumps(self.slack.responses_to(s.key)[-1:]) for s in follows)
        # A rerun's answer is a note in words by design; the others answer with a card unless they fail.
        told = [
            s
            for s in sent
            if s.acked
            and s.kind in ("lookup", "refresh", "follow")
            and self.answered(s)
            and "blocks" not in self.slack.responses_to(s.key)[0]
        ]
        reasons = Counter(
            re.sub(r"[0-9a-f]{24}", "<id>", str(self.slack.responses_to(s.key)[0].get("text")))[:100]
            for s in told
        )
        client = redis.Redis(port=self.redis.port)
        creds = len(client.keys("refold-bot:creds:*"))
        routes = len(client.keys("refold-bot:route:*"))
        client.close()
        lines = [
            f"Soak: {self.minutes:g} min, {self.workspaces} workspaces, {self.rate:g} actions/s, "
            "2 web processes, 2 workers (`python bench/soak.py"
            + (f" --minutes {self.minutes:g}" if self.minutes != 10 else "")
            + "`)",
            "",
            "| traffic | sent | acked < 3 s (webhooks: 200 in the end) | slowest ack s | answered or told why (webhooks: card posted) | duplicates |",
            "|---|---|---|---|---|---|",
            *rows,
            "",
            f"- follows that reached their final card: {completed} of {len(follows)} "
            f"(ended one way or another: {finished})",
            f"- webhook deliveries sent (Refold's retries included): {self.webhook_attempts}",
            f"- lookups, refreshes and follows answered with words instead of a card: {len(told)}",
            *[f"  - {n} × {reason}" for reason, n in reasons.most_common(6)],
            f"- credentials in Redis at the end: {creds} of {self.workspaces}; alert routes: {routes} of {ROUTED}",
            f"- Refold calls: {sum(self.refold.calls.values())}; reruns started: {len(self.refold.reruns)}",
            "",
            "Faults, as they happened:",
            "",
            *[f"    {e}" for e in self.events],
        ]
        return "\n".join(lines)

    def stop(self) -> None:
        for w in self.workers:
            if w.poll() is None:
                w.send_signal(signal.SIGTERM)
                w.wait(20)
        for log in self.worker_logs:
            log.close()
        for web in self.webs:
            web.stop()
        self.redis.stop()
        self.refold.stop()
        self.slack.stop()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--workspaces", type=int, default=50)
    parser.add_argument("--rate", type=float, default=4.0, help="actions a second")
    args = parser.parse_args()
    soak = Soak(args.minutes, args.workspaces, args.rate)
    try:
        table = soak.run()
    finally:
        soak.stop()
    print()
    print(table)
    # Read after the processes stopped, so their last lines are in.
    tracebacks = {
        log.name: log.read_text(errors="replace").count("Traceback") for log in Path(soak.tmp).glob("*.log")
    }
    print(f"\ntracebacks in the {len(tracebacks)} process logs: {sum(tracebacks.values())}")
    print(*(f"  {name}: {n}" for name, n in sorted(tracebacks.items()) if n), sep="\n")
    print(f"logs: {soak.tmp}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
