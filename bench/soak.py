"""Chaos soak: mixed traffic from many workspaces while the parts under the bot fail. Run by hand:

    python bench/soak.py                 # 10 minutes, 50 workspaces; prints the table
    python bench/soak.py --minutes 60    # the hour: a failover every 15 min, a worker killed every 5
    python bench/soak.py --minutes 3 --failover-minutes 1 --kill-minutes 1   # a short look

Starts Redis behind Sentinel (a real `redis-server` primary and replica, both with AOF, and one
`redis-server --sentinel`; the bot's REDIS_URL is `redis+sentinel://…`), the loopback Refold and Slack
fakes (the Slack fake enforcing Slack's published rate limits), two web processes (`python -m bot
serve`) and two workers (`python -m bot worker`). For the whole run it sends signed slash commands
(lookups, follows), button presses (Refresh, Rerun) and Refold webhooks, spread over both web
processes, while it:

- forces a Sentinel failover every `--failover-minutes` (SIGKILL of the primary; the old primary comes
  back 2 s after the promotion as a replica of the new one);
- kills a worker with SIGKILL every `--kill-minutes` and starts a new one;
- makes Refold answer 503, then 429, to every call for a burst, every 45 s;
- makes Slack answer `ratelimited` (429) to `chat.update` for a burst, every minute;
- sends a storm of 40 errored webhooks (3 causes) to one route every `--storm-minutes` (an incident).

It samples every process's RSS and Redis's `used_memory` every 30 s. Then it waits for the stragglers
and counts from the fakes' side what was acked, answered, finished, repeated and lost; compares each
process's RSS, and Redis's memory, with what they were after the warm-up (`--warmup-minutes`); and
lists the keys in Redis without a TTL, by family, and the families that grew most. Webhook deliveries
that are not answered 200 are sent again up to 3 times, as Refold does.
"""

from __future__ import annotations

import argparse
import faulthandler
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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import redis
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.render.buttons import encode_target  # noqa: E402
from tests.fakes.refold import FakeRefold, Fault, errored_doc, running_doc  # noqa: E402
from tests.fakes.slack import FakeSlack  # noqa: E402
from tests.harness import BotServer, block_actions, connect, is_waiting_note, wait_for_live_worker  # noqa: E402
from tests.redis_process import RedisProcess, SentinelProcess  # noqa: E402

ACK_LIMIT = 3.0
# The mix of traffic, by weight.
MIX = {"lookup": 40, "refresh": 20, "follow": 10, "rerun": 10, "webhook": 20}
ROUTED = 10  # workspaces that turn alerts on
SAMPLE_SECONDS = 30.0
STORM_NAMES = ("Nightly sync", "Export contact", "Import deals")
RUN_ID = re.compile(r"[0-9a-f]{24}")


def new_id() -> str:
    return uuid.uuid4().hex[:24]


def team_of(i: int) -> str:
    return f"TS{i:03d}"


def key_of(i: int) -> str:
    return f"tk_soak_key_{i:03d}"


def channel_of(i: int) -> str:
    """Each workspace's channel: alert routes in channels of their own, as in real workspaces (one
    channel shared by every route would put all their cards under one chat.postMessage limit)."""
    return f"C{i:03d}"


def command(web: BotServer, text: str, response_url: str, team: str, channel: str) -> httpx.Response:
    """A signed `/execution` from `channel` (tests.harness's `command` always says C1)."""
    form = {
        "token": "legacy", "team_id": team, "team_domain": "acme", "channel_id": channel,
        "channel_name": "ops", "user_id": "U1", "user_name": "alice", "command": "/execution",
        "text": text, "response_url": response_url, "trigger_id": "trig.1", "api_app_id": "A1",
    }  # fmt: skip
    return web.post_signed(urlencode(form))


def card_runs(blocks: Any) -> set[str]:
    """Runs a message's buttons name (a card's buttons carry its run in their value, as JSON)."""
    if isinstance(blocks, str):
        try:
            blocks = json.loads(blocks)
        except ValueError:
            return set()
    found: set[str] = set()
    stack: list[Any] = [blocks]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            value = item.get("value")
            if isinstance(value, str) and value.startswith("{"):
                try:
                    named = json.loads(value).get("e")
                except (ValueError, AttributeError):
                    named = None
                if isinstance(named, str):
                    found.add(named)
            stack.extend(v for v in item.values() if isinstance(v, (list, dict)))
    return found


def rss_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def family(key: str) -> str:
    """A key's name with its IDs taken out: the family a bound is written down for."""
    name = re.sub(r"[0-9a-f]{8,}(-[0-9a-f]{4,})*", "<id>", key)
    name = re.sub(r"\b(TS\d{3}|T\d+|U\d+|C\d+|acct\d+)\b", "<name>", name)
    return re.sub(r":\d+(\.\d+)?\b", ":<n>", name)


@dataclass
class Sent:
    kind: str
    key: str  # the response_url key, or the execution ID for a webhook
    team: str
    execution_id: str
    acked: bool
    ack_seconds: float


@dataclass
class Tracked:
    """A process whose RSS is sampled: its samples as (seconds since it started, kB)."""

    label: str
    pid: int
    started: float
    samples: list[tuple[float, int]] = field(default_factory=list)


class Cluster:
    """A primary and a replica, each with AOF, watched by one Sentinel; `failover` kills the primary."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        (tmp / "redis-a").mkdir()
        (tmp / "redis-b").mkdir()
        self.primary = RedisProcess(tmp / "redis-a").start()
        self.replica = RedisProcess(
            tmp / "redis-b", "--replicaof", "127.0.0.1", str(self.primary.port)
        ).start()
        wait_until(lambda: self.linked(self.replica), 15, "the replica never synced")
        self.sentinel = SentinelProcess(tmp, self.primary.port).start()
        wait_until(self.sentinel_sees_replica, 20, "Sentinel never found the replica")

    @property
    def url(self) -> str:
        return self.sentinel.url()

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.primary.port, socket_timeout=5)

    @staticmethod
    def linked(server: RedisProcess) -> bool:
        client = redis.Redis(port=server.port, socket_timeout=1)
        try:
            return bool(client.info("replication").get("master_link_status") == "up")
        except redis.RedisError:
            return False
        finally:
            client.close()

    def sentinel_sees_replica(self) -> bool:
        client = redis.Redis(port=self.sentinel.port, socket_timeout=1)
        try:
            replicas = client.sentinel_slaves(SentinelProcess.SERVICE)
        except redis.RedisError:
            return False
        finally:
            client.close()
        return any(
            "s_down" not in r.get("flags", "") and r.get("master-link-status") == "ok"
            and int(r.get("port", 0)) == self.replica.port
            for r in replicas
        )  # fmt: skip

    def failover(self) -> float:
        """Kill the primary; once Sentinel promoted the replica, bring the old one back as its replica.
        Returns the seconds from the kill to the promotion."""
        killed_at = time.monotonic()
        old, new = self.primary, self.replica
        old.kill()
        wait_until(lambda: self.sentinel.primary_port() == new.port, 60, "Sentinel did not fail over")
        promoted = time.monotonic() - killed_at
        time.sleep(2)
        back = RedisProcess(old.directory, "--replicaof", "127.0.0.1", str(new.port))
        back.port = old.port
        self.primary, self.replica = new, back.start()
        wait_until(lambda: self.linked(self.replica), 60, "the old primary never synced as a replica")
        wait_until(self.sentinel_sees_replica, 60, "Sentinel never saw the old primary as a replica")
        return promoted

    def processes(self) -> list[tuple[str, subprocess.Popen[bytes] | None]]:
        return [
            (f"redis :{self.primary.port} (primary now)", self.primary.process),
            (f"redis :{self.replica.port} (replica now)", self.replica.process),
            ("redis-sentinel", self.sentinel.process),
        ]

    def stop(self) -> None:
        self.sentinel.stop()
        self.replica.stop()
        self.primary.stop()


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(what)
        time.sleep(0.1)


@dataclass
class Soak:
    minutes: float
    workspaces: int
    rate: float  # actions a second
    failover_minutes: float
    kill_minutes: float
    storm_minutes: float
    warmup_minutes: float
    tmp: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="soak-")))
    sent: list[Sent] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    events: list[str] = field(default_factory=list)
    routes: dict[str, str] = field(default_factory=dict)  # team -> route ID
    started: float = 0.0
    webhook_attempts: int = 0
    tracked: dict[int, Tracked] = field(default_factory=dict)  # by pid
    memory: list[tuple[float, int, int]] = field(default_factory=list)  # (s, used_memory, keys)
    families_at_warmup: dict[str, tuple[int, int]] = field(default_factory=dict)
    failovers: list[float] = field(default_factory=list)
    worker_kills: int = 0
    storms: int = 0

    def note(self, what: str) -> None:
        line = f"+{time.monotonic() - self.started:6.1f}s  {what}"
        print(line, flush=True)
        self.events.append(line)

    # --- set-up ---------------------------------------------------------------

    def start(self) -> None:
        self.refold = FakeRefold()
        self.refold.start()
        self.slack = FakeSlack()
        self.slack.start()
        self.slack.admins.add("U1")
        self.slack.enforce_limits(on=True)
        self.refold.latency = 0.05
        self.cluster = Cluster(self.tmp)
        self.bot_key = Fernet.generate_key().decode()
        for i in range(self.workspaces):
            self.refold.api_keys.add(key_of(i))
            connect(self.cluster.primary.url, self.bot_key, team=team_of(i), secret=key_of(i),
                    account=f"acct{i}")  # fmt: skip
        env = {
            "SLACK_API_URL": f"{self.slack.url}/api/",
            "REDIS_URL": self.cluster.url,
            "CREDENTIALS_KEY": self.bot_key,
            "REFOLD_API_URL": self.refold.url,
            "FOLLOW_POLL_SECONDS": "1",
            "LOG_LEVEL": "WARNING",
        }
        self.webs = [BotServer(env, self.tmp / f"web{n}.log").start() for n in range(2)]
        for n, web in enumerate(self.webs):
            assert web.process is not None
            self.track(f"web {n}", web.process.pid)
        self.workers: list[subprocess.Popen[bytes]] = []
        self.worker_logs: list[Any] = []
        for _ in range(2):
            self.start_worker()
        wait_for_live_worker(self.cluster.primary.url)
        for i in range(ROUTED):
            self.turn_alerts_on(i)

    def track(self, label: str, pid: int) -> None:
        with self.lock:
            self.tracked[pid] = Tracked(label, pid, time.monotonic())

    def start_worker(self) -> None:
        process, log = self.webs[0].start_worker(self.tmp / f"worker{len(self.workers)}.log")
        self.workers.append(process)
        self.worker_logs.append(log)
        self.track(f"worker {len(self.workers) - 1}", process.pid)

    def turn_alerts_on(self, i: int) -> None:
        key = f"alerts-{i}"
        command(self.webs[0], "alerts on errored", self.slack.response_url(key), team_of(i), channel_of(i))
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
                    lambda: command(self.web(), execution_id, self.slack.response_url(key), team_of(i),
                                    channel_of(i)).status_code)  # fmt: skip

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
        # A name of its own, so the one "finished" message of this follow can be told from the others.
        name = f"Sync {execution_id[:10]}"
        steps = [running_doc(name, done=d, total=4, linked_account_id=account) for d in (1, 2, 3)]
        done = running_doc(name, done=4, total=4, status="COMPLETED", linked_account_id=account)
        self.refold.add_execution(
            execution_id, steps[0], linked_account_id=account, progression=[*steps, done]
        )
        self.record("follow", key, team_of(i), execution_id,
                    lambda: command(self.web(), f"{execution_id} follow", self.slack.response_url(key),
                                    team_of(i), channel_of(i)).status_code)  # fmt: skip

    def rerun(self, i: int) -> None:
        execution_id, key = new_id(), f"x-{uuid.uuid4().hex[:10]}"
        account = f"acct{i}"
        self.refold.add_execution(
            execution_id, errored_doc(linked_account_id=account), linked_account_id=account
        )
        payload = block_actions("rerun_execution", encode_target(execution_id, account),
                                self.slack.response_url(key), team=team_of(i), ephemeral=False)  # fmt: skip
        payload["channel"]["id"] = payload["container"]["channel_id"] = channel_of(i)
        self.record(
            "rerun", key, team_of(i), execution_id, lambda: self.web().interaction(payload).status_code
        )

    def webhook(self, i: int, name: str = "Nightly sync", storm: bool = False) -> None:
        i %= ROUTED
        team, execution_id = team_of(i), new_id()
        doc = errored_doc(name=name, linked_account_id=f"acct{i}")
        if storm:
            # A storm's failures are causes of their own (one per workflow), each its own incident.
            doc["nodes"][1]["node_name"] = f"Storm step of {name}"
        self.refold.add_execution(execution_id, doc, linked_account_id=f"acct{i}")
        event = {"linked_account_id": f"acct{i}", "instance_id": execution_id, "event": "Workflow Errored",
                 "workflow_id": "6495792b9b6ca6d77a17e513", "workflow_name": name, "status": "ERRORED"}  # fmt: skip

        slowest, status, attempt = 0.0, 0, 0
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
        next_failover = self.failover_minutes * 60
        next_worker_kill = self.kill_minutes * 60
        next_storm = self.storm_minutes * 60
        next_refold, next_slack = 45.0, 30.0
        refold_faults = [503, 429]
        while not stop.wait(0.25):
            now = time.monotonic() - self.started
            if now >= next_worker_kill:
                next_worker_kill += self.kill_minutes * 60
                alive = [w for w in self.workers if w.poll() is None]
                if alive:
                    victim = alive[0]
                    victim.send_signal(signal.SIGKILL)
                    victim.wait(10)
                    self.worker_kills += 1
                    self.start_worker()
                    self.note("killed a worker (SIGKILL) and started a new one")
            if now >= next_failover:
                next_failover += self.failover_minutes * 60
                old = self.cluster.primary.port
                self.note(f"failover: SIGKILL of the primary (:{old})")
                try:
                    promoted = self.cluster.failover()
                except RuntimeError as exc:
                    self.note(f"failover went wrong: {exc}")
                else:
                    self.failovers.append(promoted)
                    self.note(
                        f"Sentinel promoted :{self.cluster.primary.port} {promoted:.1f} s after the kill; "
                        f":{old} back as its replica"
                    )
                    for label, process in self.cluster.processes()[:2]:
                        if process is not None and process.pid not in self.tracked:
                            self.track(label, process.pid)
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
            if now >= next_storm:
                next_storm += self.storm_minutes * 60
                self.storms += 1
                self.note("storm: 40 errored webhooks for one route")
                with ThreadPoolExecutor(8) as pool:
                    for n in range(40):
                        pool.submit(self.webhook, 0, STORM_NAMES[n % 3], True)

    def sampler(self, stop: threading.Event) -> None:
        """Every process's RSS and Redis's used_memory, every SAMPLE_SECONDS; the key families at the
        end of the warm-up."""
        warmed = False
        while not stop.wait(SAMPLE_SECONDS):
            now = time.monotonic()
            with self.lock:
                tracked = list(self.tracked.values())
            for t in tracked:
                size = rss_kb(t.pid)
                if size is not None:
                    t.samples.append((now - t.started, size))
            try:
                client = self.cluster.client()
                try:
                    used = int(client.info("memory")["used_memory"])
                    count = int(client.dbsize())
                finally:
                    client.close()
            except redis.RedisError:
                continue  # mid-failover: the next sample
            self.memory.append((now - self.started, used, count))
            if not warmed and now - self.started >= self.warmup_minutes * 60:
                warmed = True
                try:
                    self.families_at_warmup = self.families()
                except redis.RedisError:
                    warmed = False

    def families(self) -> dict[str, tuple[int, int]]:
        """Keys by family: (count, bytes by MEMORY USAGE)."""
        client = self.cluster.client()
        try:
            names = list(client.scan_iter(count=2000))
            with client.pipeline(transaction=False) as pipe:
                for name in names:
                    pipe.memory_usage(name, samples=0)
                sizes = pipe.execute()
        finally:
            client.close()
        counts: Counter[str] = Counter()
        size: Counter[str] = Counter()
        for name, used in zip(names, sizes, strict=True):
            kind = family(name.decode(errors="replace"))
            counts[kind] += 1
            size[kind] += int(used or 0)
        return {kind: (counts[kind], size[kind]) for kind in counts}

    def keys_without_ttl(self) -> Counter[str]:
        client = self.cluster.client()
        try:
            names = list(client.scan_iter(count=2000))
            with client.pipeline(transaction=False) as pipe:
                for name in names:
                    pipe.ttl(name)
                ttls = pipe.execute()
        finally:
            client.close()
        return Counter(
            family(n.decode(errors="replace")) for n, ttl in zip(names, ttls, strict=True) if ttl == -1
        )

    # --- the run --------------------------------------------------------------

    def run(self) -> str:
        self.started = time.monotonic()
        self.start()
        self.note(f"set up: {self.workspaces} workspaces, 2 web processes, 2 workers, {ROUTED} alert routes")
        stop = threading.Event()
        chaos = threading.Thread(target=self.chaos, args=(stop,), daemon=True)
        sampler = threading.Thread(target=self.sampler, args=(stop,), daemon=True)
        self.started = time.monotonic()
        for t in self.tracked.values():
            t.started = max(t.started, self.started)
        chaos.start()
        sampler.start()
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
            sampler.join()
        self.note("traffic over; waiting for the stragglers")
        self.settle(deadline=time.monotonic() + 300)
        self.note("settled")
        return self.report()

    # --- counting -------------------------------------------------------------

    def posts_by_run(self) -> tuple[Counter[str], Counter[str]]:
        """By run ID: messages that show it in the alert channels (top-level or thread replies, with
        updates applied, as Slack shows them: where a person can reach it), and top-level cards of it
        alone (a button naming it): more than one is a run answered twice."""
        reachable: Counter[str] = Counter()
        cards: Counter[str] = Counter()
        for i in range(ROUTED):
            for message in self.slack.channel_messages(channel_of(i)):
                cards.update(card_runs(message.blocks))
                for one in [message, *message.replies]:
                    reachable.update(set(RUN_ID.findall(json.dumps([one.text, one.blocks]))))
        return reachable, cards

    def answered(self, s: Sent, posts: tuple[Counter[str], Counter[str]]) -> bool:
        if s.kind == "webhook":
            return posts[0][s.execution_id] > 0
        return any(not is_waiting_note(r) for r in self.slack.responses_to(s.key))

    def first_answer(self, key: str) -> dict[str, Any]:
        """The first reply that is not the waiting placeholder ({} when there is none)."""
        return next((r for r in self.slack.responses_to(key) if not is_waiting_note(r)), {})

    def finished(self, s: Sent) -> bool:
        replies = [r for r in self.slack.responses_to(s.key) if not is_waiting_note(r)]
        if not replies:
            return False
        last = json.dumps(replies[-1])
        # A final card, or an error said in words (the follow never started).
        return ("COMPLETED" in last and "unfollow_execution" not in last) or "blocks" not in replies[-1]

    def settle(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            posts = self.posts_by_run()
            with self.lock:
                pending = [s for s in self.sent if s.acked and not self.answered(s, posts)]
                follows = [s for s in self.sent if s.kind == "follow" and s.acked and not self.finished(s)]
            if not pending and not follows:
                return
            time.sleep(2)

    def rss_rows(self) -> list[str]:
        rows = []
        warm = self.warmup_minutes * 60
        for t in sorted(self.tracked.values(), key=lambda t: t.label):
            base = next((kb for age, kb in t.samples if age >= warm), None)
            if base is None or not t.samples:
                lived = t.samples[-1][0] if t.samples else 0.0
                rows.append(f"| {t.label} | {lived / 60:.0f} min | — | {t.samples[-1][1] / 1024:.0f} MB | — | — |"
                            if t.samples else f"| {t.label} | 0 min | — | — | — | — |")  # fmt: skip
                continue
            later = [kb for age, kb in t.samples if age >= warm]
            last, most = t.samples[-1][1], max(later)
            rows.append(
                f"| {t.label} | {t.samples[-1][0] / 60:.0f} min | {base / 1024:.1f} MB | {last / 1024:.1f} MB "
                f"| {most / 1024:.1f} MB | {100 * (most - base) / base:+.1f} % |"
            )
        return rows

    def memory_lines(self) -> list[str]:
        warm = self.warmup_minutes * 60
        after = [(s, used, n) for s, used, n in self.memory if s >= warm]
        if not after:
            return ["- Redis used_memory: the run was shorter than the warm-up"]
        (s0, used0, n0), (s1, used1, n1) = after[0], after[-1]
        most = max(used for _, used, _ in after)
        per_min = (used1 - used0) / max(1e-9, (s1 - s0) / 60)
        return [
            f"- Redis used_memory at +{s0 / 60:.0f} min: {used0 / 1e6:.2f} MB ({n0} keys); at the end of the "
            f"traffic (+{s1 / 60:.0f} min): {used1 / 1e6:.2f} MB ({n1} keys); highest after the warm-up "
            f"{most / 1e6:.2f} MB; {per_min / 1e3:+.1f} kB a minute",
            "- samples (min: MB): "
            + ", ".join(f"{s / 60:.0f}: {used / 1e6:.2f}" for s, used, _ in self.memory[:: max(1, len(self.memory) // 12)]),
        ]  # fmt: skip

    def report(self) -> str:
        with self.lock:
            sent = list(self.sent)
        posts = self.posts_by_run()
        by_kind: dict[str, list[Sent]] = {}
        for s in sent:
            by_kind.setdefault(s.kind, []).append(s)
        # The "finished" message of a follow, by run name: in its thread, or by DM.
        told_by_name: Counter[str] = Counter(
            found.group(0)
            for c in self.slack.calls_to("chat.postMessage")
            if c.ok and (found := re.search(r"Sync [0-9a-f]{10}", str(c.args.get("text", ""))))
        )
        reruns = Counter(old for old, _ in self.refold.reruns)
        rows = []
        for kind in MIX:
            items = by_kind.get(kind, [])
            acked = sum(s.acked for s in items)
            answered = sum(self.answered(s, posts) for s in items if s.acked)
            if kind == "webhook":
                dup = sum(posts[1][s.execution_id] > 1 for s in items)
            elif kind == "rerun":
                dup = sum(reruns[s.execution_id] > 1 for s in items)
            elif kind == "follow":
                dup = sum(told_by_name[f"Sync {s.execution_id[:10]}"] > 1 for s in items)
            else:
                # A lookup kept waiting past 3 s shows a placeholder, which its answer then replaces:
                # one answer (tests.harness.lookup_answer checks the same).
                dup = sum(
                    sum(not is_waiting_note(r) for r in self.slack.responses_to(s.key)) > 1 for s in items
                )
            lost = sum(1 for s in items if s.acked and not self.answered(s, posts))
            worst = max((s.ack_seconds for s in items), default=0.0)
            rows.append(f"| {kind} | {len(items)} | {acked} | {worst:.2f} | {answered} | {lost} | {dup} |")
        follows = [s for s in by_kind.get("follow", []) if s.acked]
        finished = sum(self.finished(s) for s in follows)
        completed = sum("COMPLETED" in json.dumps(self.slack.responses_to(s.key)[-1:]) for s in follows)
        told_done = sum(told_by_name[f"Sync {s.execution_id[:10]}"] >= 1 for s in follows)
        # A rerun's answer is a note in words by design; the others answer with a card unless they fail.
        told = [
            s
            for s in sent
            if s.acked
            and s.kind in ("lookup", "refresh", "follow")
            and self.answered(s, posts)
            and "blocks" not in self.first_answer(s.key)
        ]
        reasons = Counter(
            re.sub(r"[0-9a-f]{24}", "<id>", str(self.first_answer(s.key).get("text")))[:100] for s in told
        )
        client = self.cluster.client()
        creds = len(client.keys("refold-bot:creds:*"))
        routes = len(client.keys("refold-bot:route:*"))
        client.close()
        with self.slack.lock:
            refused = Counter(c.method for c in self.slack.refused)
            calls = Counter(c.method for c in self.slack.calls)
        no_ttl = self.keys_without_ttl()
        at_end = self.families()
        growth = sorted(
            ((kind, n, size - self.families_at_warmup.get(kind, (0, 0))[1], n - self.families_at_warmup.get(kind, (0, 0))[0])
             for kind, (n, size) in at_end.items()),
            key=lambda row: -row[2],
        )  # fmt: skip
        command = "python bench/soak.py" + "".join(f" {a}" for a in sys.argv[1:])
        lines = [
            f"Soak: {self.minutes:g} min, {self.workspaces} workspaces, {self.rate:g} actions/s, "
            f"2 web processes, 2 workers, Redis behind Sentinel, Slack fake enforcing its limits (`{command}`)",
            "",
            "| traffic | sent | acked < 3 s (webhooks: 200 in the end) | slowest ack s | answered or told why (webhooks: card posted) | lost | answered twice |",
            "|---|---|---|---|---|---|---|",
            *rows,
            "",
            f"- follows that reached their final card: {completed} of {len(follows)} "
            f"(ended one way or another: {finished}); told it finished: {told_done}",
            f"- faults: {len(self.failovers)} Sentinel failovers (promoted "
            + ", ".join(f"{s:.1f}" for s in self.failovers)
            + f" s after the kill), {self.worker_kills} workers SIGKILLed, {self.storms} storms of 40 webhooks",
            f"- webhook deliveries sent (Refold's retries included): {self.webhook_attempts}",
            f"- lookups, refreshes and follows answered with words instead of a card: {len(told)}",
            *[f"  - {n} × {reason}" for reason, n in reasons.most_common(6)],
            f"- credentials in Redis at the end: {creds} of {self.workspaces}; alert routes: {routes} of {ROUTED}",
            f"- Refold calls: {sum(self.refold.calls.values())}; reruns started: {len(self.refold.reruns)}",
            f"- Slack calls accepted: {sum(calls.values())}; refused 429 by the fake's limits: "
            + (", ".join(f"{m} {n}" for m, n in refused.most_common()) or "0"),
            "",
            f"RSS of each process (sampled every {SAMPLE_SECONDS:g} s; baseline: its first sample "
            f"{self.warmup_minutes:g} min after it started):",
            "",
            "| process | lived | RSS at baseline | RSS last | RSS highest after | growth (highest vs baseline) |",
            "|---|---|---|---|---|---|",
            *self.rss_rows(),
            "",
            *self.memory_lines(),
            "",
            "Key families, at the end of the warm-up → at the end (count, MEMORY USAGE), most grown first:",
            "",
            "| family | keys at warm-up | keys at end | bytes grown |",
            "|---|---|---|---|",
            *(f"| `{kind}` | {n - dn} | {n} | {grown / 1e3:+.1f} kB |" for kind, n, grown, dn in growth[:25]),
            "",
            "Keys without a TTL at the end, by family: "
            + (", ".join(f"`{kind}` × {n}" for kind, n in sorted(no_ttl.items())) or "none"),
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
        self.cluster.stop()
        self.refold.stop()
        self.slack.stop()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--workspaces", type=int, default=50)
    parser.add_argument("--rate", type=float, default=4.0, help="actions a second")
    parser.add_argument("--failover-minutes", type=float, default=15.0)
    parser.add_argument("--kill-minutes", type=float, default=5.0)
    parser.add_argument("--storm-minutes", type=float, default=10.0)
    parser.add_argument("--warmup-minutes", type=float, default=5.0)
    args = parser.parse_args()
    # `kill -USR1 <pid>` prints every thread's stack: an hour-long run that seems stuck can be read.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    soak = Soak(args.minutes, args.workspaces, args.rate, args.failover_minutes, args.kill_minutes,
                args.storm_minutes, min(args.warmup_minutes, args.minutes / 2))  # fmt: skip
    print(f"started {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; logs in {soak.tmp}", flush=True)
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
