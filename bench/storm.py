"""Alert storm: many Workflow Errored deliveries to one alert route in one minute. Run by hand:

    python bench/storm.py                      # 1,000 deliveries in 60 s, 5 causes, 200 linked accounts
    python bench/storm.py --deliveries 100     # a quick look

Starts a real redis-server (free port, data in a temp directory), the loopback Refold and Slack fakes
(`tests/fakes/`, the Slack fake enforcing Slack's published rate limits), the bot's web server
(`python -m bot serve`) and one `python -m bot worker`. Turns alerts on in one channel, then sends
signed Refold webhook deliveries to that route at a steady rate from a few threads. Each delivery is
a run that failed with one of `--causes` causes (a failing node name and an error text whose IDs and
numbers differ per run, so that normalisation puts them under one cause), for one of `--accounts`
linked accounts.

Measures: acks (HTTP 200) and their latency; the time until every run ID can be reached in the channel
(in a top-level message or a thread reply, as the Slack fake shows them), capped at `--cap`; top-level
messages; Slack calls made, accepted and refused with 429; Redis `used_memory` before and after, per
incident; the incident keys.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
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
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx
import redis
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakes.refold import FakeRefold, errored_doc  # noqa: E402
from tests.fakes.slack import FakeSlack  # noqa: E402
from tests.harness import API_KEY, BotServer, connect, wait_for_live_worker  # noqa: E402
from tests.redis_process import RedisProcess  # noqa: E402

CHANNEL = "C1"  # the channel the harness's slash commands come from
WORKFLOW_ID = "6495792b9b6ca6d77a17e513"
WORKFLOW_NAME = "Nightly sync"
RUN_ID = re.compile(r"[0-9a-f]{24}")
ANNOUNCEMENT = "turned on Refold alerts"


def _token_expired(n: int) -> dict[str, Any]:
    return {"error": f"401 Unauthorized: token {uuid.uuid4().hex} expired at portal {1000 + n}"}


def _partner_down(n: int) -> dict[str, Any]:
    return {"message": f"503 Service Unavailable (request {uuid.uuid4()})"}


def _quota(n: int) -> dict[str, Any]:
    return {"error": f"429 Too Many Requests: daily quota {5000 + n} used, retry after {n % 60 + 1} s"}


def _missing_record(n: int) -> dict[str, Any]:
    return {"error": f"Deal {uuid.uuid4().hex[:24]} not found in pipeline {n % 17}"}


def _mailbox(n: int) -> dict[str, Any]:
    return {"error": f"Mailbox user{n}@example.com rejected message {n * 7919}: mailbox full"}


# (failing node, error maker): each a cause of its own.
CAUSES: list[tuple[str, Callable[[int], dict[str, Any]]]] = [
    ("Create contact", _token_expired),
    ("Push invoice", _partner_down),
    ("Enrich company", _quota),
    ("Update deal", _missing_record),
    ("Send receipt", _mailbox),
]


def new_id() -> str:
    return uuid.uuid4().hex[:24]


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    cores = subprocess.run(["nproc"], capture_output=True, text=True, check=False).stdout.strip()
    redis_version = subprocess.run(
        ["redis-server", "--version"], capture_output=True, text=True, check=False
    ).stdout.split()[2]
    packages = ", ".join(f"{p} {version(p)}" for p in ("slack-bolt", "slack-sdk", "httpx", "redis", "saq"))
    return (
        f"{cores} cores ({cpu}), Python {platform.python_version()}, {platform.system()} "
        f"{platform.release()}; Redis {redis_version}; {packages}"
    )


def pacer_wired() -> bool:
    """Whether the Slack client goes through the shared SlackPacer (bot/slack/clients.py)."""
    return "SlackPacer" in (ROOT / "bot" / "slack" / "clients.py").read_text()


@dataclass
class Delivery:
    execution_id: str
    cause: int
    account: str
    payload: dict[str, Any]
    sent_at: float = 0.0  # seconds since the first send
    status: int = 0  # 0: no HTTP answer
    ack_ms: float = 0.0
    result: str = ""


@dataclass
class Storm:
    deliveries: int
    causes: int
    accounts: int
    seconds: float
    workers: int
    cap: float
    idle: float
    refold_latency: float
    tmp: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="storm-")))
    sent: list[Delivery] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    # --- set-up ---------------------------------------------------------------

    def start(self) -> None:
        self.refold = FakeRefold()
        self.refold.start()
        self.refold.latency = self.refold_latency
        self.refold.api_keys.add(API_KEY)
        self.slack = FakeSlack()
        self.slack.start()
        self.slack.admins.add("U1")
        self.slack.enforce_limits(on=True)
        self.redis = RedisProcess(self.tmp).start()
        self.client = redis.Redis(port=self.redis.port)
        bot_key = Fernet.generate_key().decode()
        connect(self.redis.url, bot_key)  # team T1, the harness's API key
        env = {
            "SLACK_API_URL": f"{self.slack.url}/api/",
            "REDIS_URL": self.redis.url,
            "CREDENTIALS_KEY": bot_key,
            "REFOLD_API_URL": self.refold.url,
            "LOG_LEVEL": "WARNING",
        }
        self.web = BotServer(env, self.tmp / "web.log").start()
        self.worker, self.worker_log = self.web.start_worker(self.tmp / "worker.log")
        wait_for_live_worker(self.redis.url)
        self.route = self.turn_on()

    def turn_on(self) -> str:
        """`/execution alerts on` in CHANNEL (errored runs), as tests/test_e2e_alerts.py's turn_on does."""
        key = "alerts-on"
        assert self.web.command("alerts on", self.slack.response_url(key)).status_code == 200
        (reply,) = self.slack.wait_responses(key, timeout=20)
        found = re.search(r"/refold/webhooks/([0-9a-f]{32})", str(reply.get("text")))
        assert found, f"no route in the reply: {reply.get('text')}"
        return found.group(1)

    def prepare(self) -> list[Delivery]:
        """Every run in the fake Refold, and its delivery: causes and accounts taken in turn."""
        planned = []
        for n in range(self.deliveries):
            execution_id, cause, account = new_id(), n % self.causes, f"acct-{n % self.accounts:03d}"
            node, error = CAUSES[cause]
            doc = errored_doc(name=WORKFLOW_NAME, linked_account_id=account)
            doc["nodes"][1]["node_name"] = node
            doc["nodes"][1]["latest_output"] = error(n)
            self.refold.add_execution(execution_id, doc, linked_account_id=account)
            payload = {
                "linked_account_id": account,
                "instance_id": execution_id,
                "workflow_id": WORKFLOW_ID,
                "config_id": "12345",
                "event": "Workflow Errored",
                "workflow_name": WORKFLOW_NAME,
                "status": "ERRORED",
            }
            planned.append(Delivery(execution_id, cause, account, payload))
        return planned

    # --- the storm ------------------------------------------------------------

    def send(self, delivery: Delivery) -> None:
        begun = time.monotonic()
        delivery.sent_at = begun - self.started
        try:
            answer = self.web.webhook(self.route, delivery.payload)
            delivery.status = answer.status_code
            delivery.result = str(answer.json().get("result", "")) if answer.status_code == 200 else ""
        except (httpx.HTTPError, ValueError):
            delivery.status = 0
        delivery.ack_ms = (time.monotonic() - begun) * 1000
        with self.lock:
            self.sent.append(delivery)

    def storm(self, planned: list[Delivery]) -> float:
        """Send at a steady rate over `seconds`; the time the last one was sent (s since the first)."""
        gap = self.seconds / max(1, len(planned))
        self.started = time.monotonic()
        with ThreadPoolExecutor(self.workers) as pool:
            for n, delivery in enumerate(planned):
                time.sleep(max(0.0, self.started + n * gap - time.monotonic()))
                pool.submit(self.send, delivery)
            last_sent = time.monotonic() - self.started
        return last_sent

    def reachable(self) -> set[str]:
        """Run IDs a person can reach in the channel: in a top-level message or a thread reply."""
        found: set[str] = set()
        for message in self.slack.channel_messages(CHANNEL):
            for one in [message, *message.replies]:
                found.update(RUN_ID.findall(json.dumps([one.text, one.blocks])))
        return found

    def slack_calls(self) -> int:
        with self.slack.lock:
            return len(self.slack.calls) + len(self.slack.refused)

    def wait_until_reachable(self, wanted: set[str]) -> tuple[float | None, int, str]:
        """Seconds from the first send until every wanted ID was reachable (None: not within the cap or
        Slack went quiet first), how many were reachable at the end, and why the wait ended."""
        deadline = self.started + self.cap
        quiet_since, calls_seen = time.monotonic(), self.slack_calls()
        while True:
            now = time.monotonic()
            got = wanted & self.reachable()
            if got == wanted:
                return now - self.started, len(got), "all reachable"
            if now >= deadline:
                return None, len(got), f"cap of {self.cap:g} s"
            calls = self.slack_calls()
            if calls != calls_seen:
                quiet_since, calls_seen = now, calls
            elif now - quiet_since >= self.idle:
                return None, len(got), f"no Slack call for {self.idle:g} s"
            time.sleep(2.0)

    # --- Redis ----------------------------------------------------------------

    def used_memory(self) -> tuple[int, int]:
        """INFO memory's used_memory, and its used_memory_dataset (without client buffers and the like)."""
        info = self.client.info("memory")
        return int(info["used_memory"]), int(info["used_memory_dataset"])

    def incident_keys(self) -> dict[str, int]:
        """Keys matching *incident*, by kind (the namespace's incident hash, its sets, the route's list)."""
        kinds: Counter[str] = Counter()
        for key in self.client.scan_iter(match="*incident*", count=1000):
            name = key.decode()
            kinds[re.sub(r":\d+$", ":<time>", re.sub(r"[0-9a-f]{16,}", "<id>", name))] += 1
        return dict(kinds)

    def incident_bytes(self) -> tuple[int, dict[str, int]]:
        """MEMORY USAGE of every *incident* key, and of each incident's own keys (its hash and the keys
        beside it: accounts, runs, thread batches, reruns) by incident."""
        total, by_incident = 0, Counter[str]()
        for key in self.client.scan_iter(match="*incident*", count=1000):
            size = int(self.client.memory_usage(key) or 0)
            total += size
            own = re.match(r"(.*:incident:[0-9a-f]+:[0-9a-f]+)(:[a-z-]+)?$", key.decode())
            if own:
                by_incident[own.group(1)] += size
        return total, dict(by_incident)

    # --- the run --------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        self.start()
        planned = self.prepare()
        time.sleep(1.0)  # the announcement's post settles; the channel's bucket refills
        memory_before = self.used_memory()
        with self.slack.lock:
            calls_before, refused_before = len(self.slack.calls), len(self.slack.refused)
        print(f"set up; sending {len(planned)} deliveries over {self.seconds:g} s", flush=True)
        last_sent = self.storm(planned)
        acked_at = time.monotonic() - self.started
        memory_sent = self.used_memory()
        print(
            f"sent in {last_sent:.1f} s, all answered by {acked_at:.1f} s; waiting for the channel",
            flush=True,
        )
        wanted = {d.execution_id for d in self.sent if d.status == 200}
        reached_s, reached, ended = self.wait_until_reachable(wanted)
        waited_s = time.monotonic() - self.started
        memory_after = self.used_memory()
        with self.slack.lock:  # the storm's calls only, not the set-up's
            calls = self.slack.calls[calls_before:]
            refused = self.slack.refused[refused_before:]
        top = [m for m in self.slack.channel_messages(CHANNEL) if ANNOUNCEMENT not in str(m.text)]
        kinds = self.incident_keys()
        incidents = sum(n for kind, n in kinds.items() if re.search(r":incident:<id>:<id>$", kind))
        worker_log = (self.tmp / "worker.log").read_text(errors="replace")
        incident_bytes, by_incident = self.incident_bytes()
        return {
            "sent": self.sent,
            "last_sent": last_sent,
            "reached_s": reached_s,
            "reached": reached,
            "wanted": len(wanted),
            "ended": ended,
            "waited_s": waited_s,
            "top": len(top),
            "top_with_replies": sum(1 for m in top if m.replies),
            "calls": calls,
            "refused": refused,
            "memory": (memory_before, memory_sent, memory_after),
            "incident_keys": kinds,
            "incidents": incidents,
            "incident_bytes": incident_bytes,
            "by_incident": by_incident,
            "given_up": worker_log.count("an alert could not be posted"),
            "fallback_cards": worker_log.count("the incident got a message of its own"),
        }

    def stop(self) -> None:
        if self.worker.poll() is None:
            self.worker.terminate()
            self.worker.wait(20)
        self.worker_log.close()
        self.web.stop()
        self.client.close()
        self.redis.stop()
        self.refold.stop()
        self.slack.stop()


def table(storm: Storm, got: dict[str, Any]) -> str:
    sent: list[Delivery] = got["sent"]
    acked = [d for d in sent if d.status == 200]
    acks = [d.ack_ms for d in sent if d.status]
    results = Counter(d.result or f"HTTP {d.status}" for d in sent)
    calls, refused = got["calls"], got["refused"]
    made = len(calls) + len(refused)
    accepted = sum(1 for c in calls if c.ok)
    share = 100 * len(refused) / made if made else 0.0
    by_method = Counter(c.method for c in calls)
    refused_by = Counter(c.method for c in refused)
    accepted_by = Counter(c.method for c in calls if c.ok)
    threaded = sum(1 for c in calls if c.method == "chat.postMessage" and c.ok and c.args.get("thread_ts"))
    (before, data_before), (at_send_end, data_sent), (after, data_after) = got["memory"]
    incidents = got["incidents"]
    per_incident = (after - before) / incidents if incidents else float("nan")
    per_incident_data = (data_after - data_before) / incidents if incidents else float("nan")
    reached = (
        f"{got['reached_s']:.1f}"
        if got["reached_s"] is not None
        else f"not all: {got['reached']} of {got['wanted']} after {got['waited_s']:.0f} s ({got['ended']})"
    )
    rows = [
        ("deliveries sent", f"{len(sent)} over {got['last_sent']:.1f} s ({storm.workers} threads)"),
        ("deliveries acked (HTTP 200)", f"{len(acked)}"),
        ("what the acks said", ", ".join(f"{n} {r}" for r, n in results.most_common())),
        ("webhook ack p50 / p99 ms", f"{percentile(acks, 0.5):.1f} / {percentile(acks, 0.99):.1f}"),
        ("every acked run reachable in the channel, s from first send", reached),
        ("run IDs reachable at the end", f"{got['reached']} of {got['wanted']}"),
        ('worker log: "an alert could not be posted" (runs given up)', f"{got['given_up']}"),
        (
            'worker log: "the incident got a message of its own" (its first card came too late)',
            f"{got['fallback_cards']}",
        ),
        (
            "top-level messages in the channel (announcement not counted)",
            f"{got['top']} ({got['top_with_replies']} with a thread)",
        ),
        ("thread replies posted (accepted chat.postMessage with thread_ts)", f"{threaded}"),
        ("Slack calls made / accepted / answered 429", f"{made} / {accepted} / {len(refused)}"),
        ("429 share", f"{share:.1f} %"),
        *(
            (
                f"  {m}: made / accepted / 429",
                f"{by_method[m] + refused_by[m]} / {accepted_by[m]} / {refused_by[m]}",
            )
            for m in sorted(set(by_method) | set(refused_by))
        ),
        (
            "Redis used_memory before / after the sends / at the end",
            f"{before / 1e6:.2f} / {at_send_end / 1e6:.2f} / {after / 1e6:.2f} MB",
        ),
        (
            "Redis used_memory_dataset before / after the sends / at the end",
            f"{data_before / 1e6:.2f} / {data_sent / 1e6:.2f} / {data_after / 1e6:.2f} MB",
        ),
        (
            "Redis growth per incident (end − before) / incidents: used_memory, dataset",
            f"{per_incident / 1e3:.1f} kB, {per_incident_data / 1e3:.1f} kB",
        ),
        ("MEMORY USAGE of the *incident* keys, total", f"{got['incident_bytes'] / 1e3:.1f} kB"),
        (
            "MEMORY USAGE per incident (its hash and the keys beside it)",
            ", ".join(f"{b / 1e3:.1f}" for b in sorted(got["by_incident"].values())) + " kB",
        ),
        (
            "incident keys (SCAN *incident*)",
            f"{sum(got['incident_keys'].values())}: "
            + ", ".join(f"{n} × {k}" for k, n in sorted(got["incident_keys"].items())),
        ),
    ]
    lines = [
        f"Storm: {storm.deliveries} Workflow Errored deliveries to one route in {storm.seconds:g} s, "
        f"{storm.causes} causes, {storm.accounts} linked accounts; Slack fake enforcing its limits; "
        f"Refold latency {storm.refold_latency * 1000:g} ms; 1 web process, 1 worker.",
        f"Slack pacer wired into bot/slack/clients.py: {'yes' if pacer_wired() else 'no'}.",
        "",
        "| measure | value |",
        "|---|---|",
        *(f"| {name} | {value} |" for name, value in rows),
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--deliveries", type=int, default=1000)
    parser.add_argument("--causes", type=int, default=5, choices=range(1, len(CAUSES) + 1))
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=60.0, help="spread the deliveries over this long")
    parser.add_argument("--workers", type=int, default=4, help="sending threads")
    parser.add_argument(
        "--cap", type=float, default=360.0, help="longest wait for the channel, s from the first send"
    )
    parser.add_argument(
        "--idle", type=float, default=90.0, help="stop waiting once Slack saw no call this long"
    )
    parser.add_argument("--refold-latency", type=float, default=0.05, help="seconds")
    args = parser.parse_args()
    storm = Storm(
        args.deliveries, args.causes, args.accounts, args.seconds, args.workers,
        args.cap, args.idle, args.refold_latency,
    )  # fmt: skip
    command = "python " + " ".join(["bench/storm.py", *sys.argv[1:]])
    started = datetime.now(UTC)
    try:
        got = storm.run()
    finally:
        storm.stop()
    print()
    print(f"Measured {started:%Y-%m-%d %H:%M} UTC with `{command}` on: {machine()}.")
    print()
    print(table(storm, got))
    tracebacks = {
        log.name: log.read_text(errors="replace").count("Traceback") for log in storm.tmp.glob("*.log")
    }
    print(f"\ntracebacks in the process logs: {sum(tracebacks.values())}; logs: {storm.tmp}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
