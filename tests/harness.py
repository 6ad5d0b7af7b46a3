"""Drive the real bot process over HTTP, signing requests exactly as Slack does."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import redis.asyncio as aioredis
from pydantic import SecretStr
from slack_sdk.signature import SignatureVerifier

from bot.refold.credentials import AuthKind
from bot.slack.clients import workspace_name
from bot.store import keys
from bot.store.credentials import CredentialStore, Scope, StoredCredentials
from bot.store.crypto import Cipher
from bot.store.slack_pacer import SlackPacer

ROOT = Path(__file__).resolve().parent.parent
SIGNING_SECRET = "test-signing-secret-8c1f0e"
BOT_TOKEN = "xoxb-1111111111-2222222222-testbottokenvalue"
EXEC_ID = "65410cf6cdf931a12d7ab009"
API_KEY = "tk_e2e_secret_key_9f2c"
# Prometheus scrapes bear this; it is a secret like the others (never logged).
METRICS_TOKEN = "metrics-token-5b7e1d3a"


def connect(
    redis_url: str,
    key: str,
    team: str = "T1",
    secret: str = API_KEY,
    account: str = "acme",
    scope: Scope = Scope.TEAM,
    operator_users: tuple[str, ...] = (),
    operator_groups: tuple[str, ...] = (),
) -> None:
    import asyncio

    import redis.asyncio as aioredis

    async def save() -> None:
        client = aioredis.from_url(redis_url)
        record = StoredCredentials(
            kind=AuthKind.API_KEY,
            secret=SecretStr(secret),
            linked_account_id=account,
            connected_by="U1",
            connected_at=datetime.now(UTC),
            operator_users=list(operator_users),
            operator_groups=list(operator_groups),
        )
        await CredentialStore(client, Cipher([key])).save(scope, team, record)
        await client.aclose()

    asyncio.run(save())


def max_in_window(times: list[float], window: float) -> int:
    times = sorted(times)
    best, start = 0, 0
    for end in range(len(times)):
        while times[end] - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class BotServer:
    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        base = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("SLACK_", "REFOLD_", "REDIS_", "CREDENTIALS_"))
        }
        base.update(
            {
                "SLACK_SIGNING_SECRET": SIGNING_SECRET,
                "SLACK_BOT_TOKEN": BOT_TOKEN,
                "PORT": str(self.port),
                "PYTHONPATH": str(ROOT),
                "LOG_LEVEL": "INFO",
            }
        )
        base.update(env)
        # A value of "" removes the variable (e.g. SLACK_BOT_TOKEN for an OAuth deployment).
        self.env = {k: v for k, v in base.items() if v != ""}
        self.process: subprocess.Popen[bytes] | None = None
        self.http = httpx.Client(timeout=10)

    def start(self, wait_for_http: bool = True, argv: list[str] | None = None) -> BotServer:
        """Spawn `python -m bot serve` (or `argv`, which serves on PORT); unless told otherwise (Socket
        Mode), wait until /healthz answers."""
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            argv or [sys.executable, "-m", "bot", "serve"],
            env=self.env,
            cwd=ROOT / "tests",
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        if not wait_for_http:
            return self
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"bot exited early: {self.log_path.read_text()[-2000:]}")
            try:
                if self.http.get(f"{self.url}/healthz").status_code in (200, 503):
                    return self
            except httpx.TransportError:
                time.sleep(0.05)
        raise RuntimeError("bot did not start")

    def start_worker(self, log_path: Path, **overrides: str) -> tuple[subprocess.Popen[bytes], Any]:
        """`python -m bot worker` with this server's settings (and `overrides`); the process and its log."""
        log = log_path.open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "bot", "worker"],
            env={**self.env, **overrides},
            cwd=ROOT / "tests",
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        return process, log

    def stop(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(20)
        finally:
            self._log.close()
        return code

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    # --- signed requests -----------------------------------------------------

    def post_signed(
        self,
        body: str,
        content_type: str = "application/x-www-form-urlencoded",
        *,
        timestamp: int | None = None,
        secret: str = SIGNING_SECRET,
        tamper: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        ts = str(int(time.time()) if timestamp is None else timestamp)
        signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
        sent = tamper if tamper is not None else body
        sent_headers = {
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": signature,
            "Content-Type": content_type,
            **(headers or {}),
        }
        return self.http.post(f"{self.url}/slack/events", content=sent.encode(), headers=sent_headers)

    def event(
        self, event: dict[str, Any], *, event_id: str, team: str = "T1", retry_num: int | None = None
    ) -> httpx.Response:
        """An Events API delivery, as Slack sends it (and, with `retry_num`, redelivers it)."""
        body = {
            "token": "legacy",
            "team_id": team,
            "api_app_id": "A1",
            "event": event,
            "type": "event_callback",
            "event_id": event_id,
            "event_time": int(time.time()),
            "authorizations": [{"team_id": team, "user_id": "UBOT", "is_bot": True}],
        }
        retry = {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": "http_timeout"}
        return self.post_signed(
            json.dumps(body), "application/json", headers=retry if retry_num is not None else None
        )

    def webhook(
        self, route_id: str, payload: dict[str, Any] | bytes, *, key: str | None = API_KEY
    ) -> httpx.Response:
        """A Refold webhook delivery, signed with `key` as Refold signs them (None: unsigned)."""
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"}
        if key is not None:
            headers["x-cobalt-signature"] = hmac.new(key.encode(), body, hashlib.sha256).hexdigest()
        return self.http.post(f"{self.url}/refold/webhooks/{route_id}", content=body, headers=headers)

    def command(
        self,
        text: str,
        response_url: str,
        *,
        team: str = "T1",
        user: str = "U1",
        enterprise: str | None = None,
        trigger_id: str = "trig.1",
    ) -> httpx.Response:
        form = {
            "token": "legacy",
            "team_id": team,
            "team_domain": "acme",
            "channel_id": "C1",
            "channel_name": "ops",
            "user_id": user,
            "user_name": "alice",
            "command": "/execution",
            "text": text,
            "response_url": response_url,
            "trigger_id": trigger_id,
            "api_app_id": "A1",
        }
        if enterprise:
            form["enterprise_id"] = enterprise
        return self.post_signed(urlencode(form))

    def wait_for_background_work(self, timeout: float = 10.0) -> None:
        """Until the web process runs no task after its answers (its metrics say how many)."""
        deadline = time.monotonic() + timeout
        pattern = re.compile(r"^refold_bot_background_tasks (\S+)$", re.MULTILINE)
        while time.monotonic() < deadline:
            scraped = self.http.get(
                f"{self.url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
            )
            found = pattern.search(scraped.text)
            if found is not None and float(found.group(1)) == 0:
                return
            time.sleep(0.05)
        raise AssertionError("the web process still runs background tasks")

    def interaction(self, payload: dict[str, Any]) -> httpx.Response:
        return self.post_signed(urlencode({"payload": json.dumps(payload)}))


def block_actions(
    action_id: str,
    value: str,
    response_url: str,
    *,
    team: str = "T1",
    user: str = "U1",
    ephemeral: bool = True,
    message: dict[str, Any] | None = None,
    message_ts: str = "1.1",
    action_ts: str = "1.2",
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "type": "block_actions",
        "team": {"id": team, "domain": "acme"},
        "user": {"id": user, "team_id": team},
        "api_app_id": "A1",
        "token": "legacy",
        "trigger_id": "trig.2",
        "response_url": response_url,
        "container": {
            "type": "message",
            "is_ephemeral": ephemeral,
            "channel_id": "C1",
            "message_ts": message_ts,
        },
        "channel": {"id": "C1", "name": "ops"},
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": "b",
                "value": value,
                "action_ts": action_ts,
            }
        ],
    }
    if message is not None:
        payload["message"] = message
    return payload


def message_shortcut(
    message: dict[str, Any], response_url: str, *, team: str = "T1", user: str = "U1"
) -> dict[str, Any]:
    return {
        "type": "message_action",
        "callback_id": "lookup_execution",
        "team": {"id": team, "domain": "acme"},
        "user": {"id": user, "team_id": team},
        "channel": {"id": "C1", "name": "alerts"},
        "message": {"type": "message", "ts": "1700000000.000100", **message},
        "response_url": response_url,
        "trigger_id": "trig.3",
        "action_ts": "1.3",
        "token": "legacy",
    }


def view_submission(values: dict[str, Any], *, team: str = "T1", user: str = "U1") -> dict[str, Any]:
    return {
        "type": "view_submission",
        "team": {"id": team, "domain": "acme"},
        "user": {"id": user, "team_id": team},
        "api_app_id": "A1",
        "token": "legacy",
        "trigger_id": "trig.4",
        "view": {
            "id": "V1",
            "type": "modal",
            "callback_id": "connect_refold",
            "team_id": team,
            "private_metadata": "",
            "state": {"values": values},
        },
    }


def connect_values(
    secret: str, account: str | None = "acme", kind: str = "api_key", base_url: str | None = None
) -> dict[str, Any]:
    return {
        "auth_kind": {"value": {"type": "radio_buttons", "selected_option": {"value": kind}}},
        "secret": {"value": {"type": "plain_text_input", "value": secret}},
        "linked_account": {"value": {"type": "plain_text_input", "value": account}},
        "base_url": {"value": {"type": "plain_text_input", "value": base_url}},
    }


def live_workers(redis_url: str, *, standby: bool = False) -> int:
    """Worker processes reporting in to the job queue now (saq's worker list: scores are expiry times
    in ms), or with `standby`, the web processes' standby workers."""
    import redis as sync_redis

    client = sync_redis.Redis.from_url(redis_url)
    try:
        members = client.zrangebyscore("saq:refold-bot:stats", int(time.time() * 1000), "+inf")
    finally:
        client.close()
    return sum((b":standby-" in m) == standby for m in members)


def wait_for_live_worker(redis_url: str, timeout: float = 15.0) -> None:
    """Until a worker reports in, then as long again as web processes take to notice (once a second)."""
    deadline = time.monotonic() + timeout
    while live_workers(redis_url) == 0:
        assert time.monotonic() < deadline, "no worker reported in"
        time.sleep(0.05)
    time.sleep(1.1)


def queue_busy(redis_url: str, *, scheduled_before: float = math.inf) -> tuple[int, int, int]:
    """The job queue's jobs queued, active, and scheduled for no later than `scheduled_before` (epoch
    seconds; saq's standing cron job aside), read in one transaction: saq moves a job between its lists atomically, so a read of all
    three at once never misses one in passing."""
    import redis as sync_redis

    client = sync_redis.Redis.from_url(redis_url)
    prefix = f"saq:{keys.JOB_QUEUE}"
    # saq scores a job waiting for its time with that time, and one due (queued or active) with 0.
    upper = "+inf" if scheduled_before == math.inf else scheduled_before
    try:
        with client.pipeline(transaction=True) as pipe:
            pipe.llen(f"{prefix}:queued").llen(f"{prefix}:active")
            pipe.zrangebyscore(f"{prefix}:incomplete", "(0", upper)
            queued, active, waiting = pipe.execute()
    finally:
        client.close()
    # saq's cron keeps the digests' upkeep scheduled for its next slot for good: it is not pending work.
    return queued, active, sum(1 for job in waiting if b":cron:" not in job)


def hold_slack_budget(redis_url: str, method: str, seconds: float) -> None:
    """As after Slack answered `method` 429 with Retry-After `seconds`: the bot's pacer grants no turn
    under the workspace's budget for it, in any process, until then."""

    async def hold(pacer: SlackPacer, _: aioredis.Redis) -> None:
        await pacer.hold(workspace_name(BOT_TOKEN), method, None, seconds)

    asyncio.run(_with_pacer(redis_url, hold))


def release_slack_budget(redis_url: str, method: str) -> None:
    """The hold above ended early."""

    async def release(pacer: SlackPacer, client: aioredis.Redis) -> None:
        await client.delete(keys.slack_hold(pacer.key(workspace_name(BOT_TOKEN), method, None)))

    asyncio.run(_with_pacer(redis_url, release))


async def _with_pacer(redis_url: str, use: Callable[[SlackPacer, aioredis.Redis], Awaitable[None]]) -> None:
    client = aioredis.Redis.from_url(redis_url)
    try:
        await use(SlackPacer(client), client)
    finally:
        await client.aclose()


def wait_until_quiet(redis_url: str, *, scheduled_before: float = math.inf, timeout: float = 15.0) -> None:
    """Until no job is queued or running and none is scheduled for `scheduled_before` or earlier (by
    default, none at all): from then on no job can post anything more. Work a web process runs itself
    (no worker alive) never goes through the queue, so this says nothing about it."""
    deadline = time.monotonic() + timeout
    while any(busy := queue_busy(redis_url, scheduled_before=scheduled_before)):
        assert time.monotonic() < deadline, (
            f"the job queue never went quiet (queued, active, scheduled): {busy}"
        )
        time.sleep(0.05)


def is_waiting_note(response: dict[str, Any]) -> bool:
    """The placeholder a lookup still waiting 3 s after it was asked shows until its answer comes."""
    return "blocks" not in response and str(response.get("text", "")).startswith(
        ":hourglass_flowing_sand: Looking up"
    )


def lookup_answer(slack: Any, key: str, timeout: float = 10.0) -> dict[str, Any]:
    """A lookup's one answer at its response_url, past the waiting note a slow lookup shows first;
    when there was one, the answer replaces it."""
    answers = slack.wait_for(
        lambda s: (got := s._responses_unlocked(key)) and not is_waiting_note(got[-1]) and got, timeout
    )
    *notes, answer = answers
    assert len(notes) <= 1 and all(is_waiting_note(n) for n in notes), answers
    if notes:
        assert answer["replace_original"] is True, answer
    return answer
