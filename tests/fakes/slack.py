"""A loopback Slack: a Web API that records calls, and `response_url` receivers.

Answers follow Slack's documented shapes (`{"ok": true, ...}` / `{"ok": false, "error": ...}`).
Errors can be programmed per method, and per response_url.

Slack's published rate limits (https://api.slack.com/docs/rate-limits) can be enforced, off by
default; tests where volume matters call `slack.enforce_limits()`. See `RateLimits`.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.loopback import LoopbackServer


@dataclass
class SlackCall:
    method: str
    token: str | None
    args: dict[str, Any]
    # What the fake answered; None while the call is still being answered (see `latency`).
    status: int | None = None
    answer: dict[str, Any] | None = None
    at: float = field(default_factory=time.time)  # when it came in

    @property
    def ok(self) -> bool:
        return bool(self.answer and self.answer.get("ok"))


# Per-minute quotas of Slack's Web API tiers, per method per workspace (per app).
TIER_PER_MINUTE: Mapping[int, int] = {1: 1, 2: 20, 3: 50, 4: 100}
METHOD_TIERS: Mapping[str, int] = {
    "chat.update": 3,
    "chat.delete": 3,
    "chat.unfurl": 3,
    "conversations.open": 3,
    "users.info": 4,
}
# Whole families share a tier: views.open/update/push/publish are Tier 4, usergroups.* Tier 2.
PREFIX_TIERS: Mapping[str, int] = {"views.": 4, "usergroups.": 2}


@dataclass(frozen=True)
class RateLimits:
    """Slack's published limits, as https://api.slack.com/docs/rate-limits states them.

    - chat.postMessage: "1 per second" per channel, "short bursts >1 allowed" (a Special tier, with a
      workspace-wide limit of its own that Slack does not quantify, so it is not modelled). Modelled as
      a token bucket per workspace and channel: `post_burst` tokens, refilled at `post_per_second`.
    - Tiered methods: per method per workspace, Tier 2 "20+ per minute", Tier 3 "50+", Tier 4 "100+".
      Modelled as a sliding 60-second window holding at most that many answered calls, so the 51st
      chat.update within a minute is refused. Methods with no tier here are never limited.
    - A refusal is HTTP 429, `Retry-After: <whole seconds, at least 1>`, `{"ok": false, "error":
      "ratelimited"}`.
    A workspace is the token's team when `bots` knows the token, else the token itself.
    """

    post_burst: int = 4
    post_per_second: float = 1.0
    tier_per_minute: Mapping[int, int] = field(default_factory=lambda: dict(TIER_PER_MINUTE))
    method_tiers: Mapping[str, int] = field(default_factory=lambda: dict(METHOD_TIERS))
    prefix_tiers: Mapping[str, int] = field(default_factory=lambda: dict(PREFIX_TIERS))
    window_seconds: float = 60.0

    def tier(self, method: str) -> int | None:
        if method in self.method_tiers:
            return self.method_tiers[method]
        return next((t for prefix, t in self.prefix_tiers.items() if method.startswith(prefix)), None)


@dataclass
class Message:
    """A message as a channel shows it: its latest text and blocks, and (top-level ones) its replies."""

    channel: str
    ts: str
    text: str | None
    blocks: list[dict[str, Any]] | None
    thread_ts: str | None
    replies: list[Message] = field(default_factory=list)
    updates: int = 0  # accepted chat.update calls applied to it


@dataclass
class ProgrammedError:
    error: str
    times: int = 1
    status: int = 200
    retry_after: int | None = None


class FakeSlack(LoopbackServer):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[SlackCall] = []
        self.responses: list[dict[str, Any]] = []  # bodies posted to response_urls, with "_key"
        self._responses_by_key: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
        self.admins: set[str] = set()
        # users.info's `tz` (the profile's IANA time zone); Slack's default for a new user otherwise.
        self.zones: dict[str, str] = {}
        self.errors: dict[str, collections.deque[ProgrammedError]] = collections.defaultdict(
            collections.deque
        )
        self.response_url_status: dict[str, int] = {}
        # Statuses a response_url answers first, one per post, before it answers normally.
        self.response_url_faults: dict[str, collections.deque[int]] = collections.defaultdict(
            collections.deque
        )
        # oauth.v2.access: install codes and refresh tokens, each usable once, as Slack's are.
        self.oauth_codes: dict[str, dict[str, Any]] = {}
        self.refresh_tokens: dict[str, dict[str, Any]] = {}
        self.bots: dict[str, dict[str, Any]] = {}  # bot token -> auth.test answer
        # User groups: ID -> (name, members), for usergroups.list and usergroups.users.list.
        self.usergroups: dict[str, tuple[str, list[str]]] = {}
        # Slack lets an app use a response_url this many times (within 30 minutes); then 404 used_url.
        self.response_url_limit = 5
        self._response_url_uses: collections.Counter[str] = collections.Counter()
        # Socket Mode: envelopes to push to a connected client, and what it sent back.
        self.socket_outbox: list[dict[str, Any]] = []
        self.socket_inbox: list[dict[str, Any]] = []
        # Channels the bot is not a member of (private ones it was not invited to): posts there fail.
        self.not_member: set[str] = set()
        # Seconds a Web API method takes to answer (the call is recorded on arrival).
        self.latency: dict[str, float] = {}
        self._ts = itertools.count(1)
        # Rate limits (off unless a test turns them on). Calls they refuse never reach `calls`.
        self.limits: RateLimits | None = None
        self.refused: list[SlackCall] = []
        # Replaceable so a test can move time on instead of sleeping through a refill.
        self.clock: Callable[[], float] = time.monotonic
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}  # (workspace, channel) -> tokens, at
        self._windows: dict[tuple[str, str], collections.deque[float]] = collections.defaultdict(
            collections.deque
        )

    def reset(self) -> None:
        with self.lock:
            self.calls.clear()
            self.responses.clear()
            self._responses_by_key.clear()
            self.admins.clear()
            self.zones.clear()
            self.errors.clear()
            self.response_url_status.clear()
            self.response_url_faults.clear()
            self.oauth_codes.clear()
            self.refresh_tokens.clear()
            self.bots.clear()
            self.usergroups.clear()
            self.response_url_limit = 5
            self._response_url_uses.clear()
            self.socket_outbox.clear()
            self.socket_inbox.clear()
            self.not_member.clear()
            self.latency.clear()
            self.limits = None
            self.refused.clear()
            self.clock = time.monotonic
            self._buckets.clear()
            self._windows.clear()

    # --- programming and reading ----------------------------------------------

    def response_url(self, key: str) -> str:
        return f"{self.url}/response/{key}"

    def fail(self, method: str, error: str, **kwargs: Any) -> None:
        with self.lock:
            self.errors[method].append(ProgrammedError(error, **kwargs))

    def calls_to(self, method: str) -> list[SlackCall]:
        """Calls that got past the rate limits, whatever they were answered (programmed errors too)."""
        with self.lock:
            return [c for c in self.calls if c.method == method]

    def accepted_calls_to(self, method: str) -> list[SlackCall]:
        """Calls answered `ok: true`: no programmed error, no refusal, not still in flight."""
        with self.lock:
            return [c for c in self.calls if c.method == method and c.ok]

    def refused_to(self, method: str) -> list[SlackCall]:
        """Calls the rate limits refused with 429 `ratelimited`."""
        with self.lock:
            return [c for c in self.refused if c.method == method]

    def enforce_limits(self, on: bool = True, limits: RateLimits | None = None) -> None:
        """Turn Slack's rate limits on (with their published values unless `limits` says otherwise)."""
        with self.lock:
            self.limits = (limits or RateLimits()) if on else None
            self._buckets.clear()
            self._windows.clear()

    def channel_messages(self, channel: str) -> list[Message]:
        """The channel's top-level messages, oldest first, each with its thread replies, as Slack shows them.

        Built from accepted chat.postMessage calls (no `thread_ts`, or a `thread_ts` equal to its own
        ts, is top-level), with accepted chat.update calls applied by channel and ts and chat.delete
        calls taken out. Replies under a parent the bot never posted appear only in `thread()`.
        A `reply_broadcast` reply is listed as a reply only.
        """
        messages = self._messages(channel)
        top = [m for m in messages.values() if m.thread_ts in (None, m.ts)]
        for message in messages.values():
            parent = messages.get(message.thread_ts or "")
            if parent is not None and parent is not message:
                parent.replies.append(message)
        return top

    def thread(self, channel: str, thread_ts: str) -> list[Message]:
        """Replies in one thread, oldest first, whether or not the bot posted its parent."""
        return [m for m in self._messages(channel).values() if m.thread_ts == thread_ts and m.ts != thread_ts]

    def message(self, channel: str, ts: str) -> Message | None:
        return self._messages(channel).get(ts)

    def _messages(self, channel: str) -> dict[str, Message]:
        with self.lock:
            calls = [c for c in self.calls if c.ok]
        messages: dict[str, Message] = {}
        for call in calls:
            assert call.answer is not None
            if call.answer.get("channel", call.args.get("channel")) != channel:
                continue
            ts = str(call.answer.get("ts") or call.args.get("ts") or "")
            if call.method == "chat.postMessage":
                thread_ts = call.args.get("thread_ts")
                messages[ts] = Message(
                    channel,
                    ts,
                    call.args.get("text"),
                    _blocks(call.args.get("blocks")),
                    str(thread_ts) if thread_ts else None,
                )
            elif call.method == "chat.update" and (target := messages.get(str(call.args.get("ts")))):
                # Slack replaces what an update sends and keeps what it leaves out.
                if "text" in call.args:
                    target.text = call.args["text"]
                if "blocks" in call.args:
                    target.blocks = _blocks(call.args["blocks"])
                target.updates += 1
            elif call.method == "chat.delete":
                messages.pop(str(call.args.get("ts")), None)
        return messages

    def responses_to(self, key: str) -> list[dict[str, Any]]:
        with self.lock:
            return list(self._responses_by_key.get(key, ()))

    def wait_for(self, predicate: Any, timeout: float = 10.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                result = predicate(self)
            if result:
                return result
            time.sleep(0.01)
        raise AssertionError("timed out waiting for the Slack fake")

    def wait_responses(self, key: str, count: int = 1, timeout: float = 10.0) -> list[dict[str, Any]]:
        return self.wait_for(lambda s: len(r := s._responses_unlocked(key)) >= count and r, timeout)

    def _responses_unlocked(self, key: str) -> list[dict[str, Any]]:
        return list(self._responses_by_key.get(key, ()))

    # --- serving -------------------------------------------------------------

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/response/{key}", self._response_url)
        app.router.add_get("/socket", self._socket)
        return app

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        """A Socket Mode endpoint: says hello, pushes queued envelopes, records the client's acks."""
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_json({"type": "hello", "num_connections": 1, "debug_info": {"host": "fake"}})

        async def receive() -> None:
            async for message in ws:
                if message.type == web.WSMsgType.TEXT:
                    with self.lock:
                        self.socket_inbox.append(json.loads(message.data))

        reader = asyncio.ensure_future(receive())
        while not ws.closed:
            with self.lock:
                outgoing, self.socket_outbox[:] = list(self.socket_outbox), []
            for envelope in outgoing:
                await ws.send_json(envelope)
            await asyncio.sleep(0.02)
        reader.cancel()
        return ws

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args: dict[str, Any] = dict(request.query)
        if request.method == "POST":
            if request.content_type == "application/json":
                args.update(await request.json())
            else:
                args.update(dict(await request.post()))
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else args.pop("token", None)
        call = SlackCall(method, token, args)
        with self.lock:
            retry_after = self._rate_limited(method, token, args)
            if retry_after is not None:
                call.status, call.answer = 429, {"ok": False, "error": "ratelimited"}
                self.refused.append(call)
                return web.json_response(call.answer, status=429, headers={"Retry-After": str(retry_after)})
            self.calls.append(call)
            queue = self.errors.get(method)
            programmed = None
            if queue:
                programmed = queue[0]
                programmed.times -= 1
                if programmed.times <= 0:
                    queue.popleft()
            admins = set(self.admins)
            zones = dict(self.zones)
            delay = self.latency.get(method, 0.0)
        if delay:
            await asyncio.sleep(delay)
        if programmed is not None:
            headers = (
                {"Retry-After": str(programmed.retry_after)} if programmed.retry_after is not None else {}
            )
            status, answer = programmed.status, {"ok": False, "error": programmed.error}
        else:
            status, answer = 200, self._answer(method, args, admins, token, zones)
            headers = {}
        with self.lock:
            call.status, call.answer = status, answer
        return web.json_response(answer, status=status, headers=headers)

    def _rate_limited(self, method: str, token: str | None, args: dict[str, Any]) -> int | None:
        """Seconds to wait when the limits refuse this call, else None (and the call is counted)."""
        limits = self.limits
        if limits is None:
            return None
        known = self.bots.get(token or "")
        workspace = str((known or {}).get("team_id") or token or "")
        now = self.clock()
        if method == "chat.postMessage":
            key = (workspace, str(args.get("channel", "")))
            tokens, at = self._buckets.get(key, (float(limits.post_burst), now))
            tokens = min(float(limits.post_burst), tokens + (now - at) * limits.post_per_second)
            if tokens < 1:
                self._buckets[key] = (tokens, now)
                return max(1, math.ceil((1 - tokens) / limits.post_per_second))
            self._buckets[key] = (tokens - 1, now)
            return None
        tier = limits.tier(method)
        if tier is None:
            return None
        window = self._windows[(workspace, method)]
        while window and window[0] <= now - limits.window_seconds:
            window.popleft()
        if len(window) >= limits.tier_per_minute[tier]:
            return max(1, math.ceil(window[0] + limits.window_seconds - now))
        window.append(now)
        return None

    def _answer(
        self, method: str, args: dict[str, Any], admins: set[str], token: str | None, zones: dict[str, str]
    ) -> dict[str, Any]:
        if method == "oauth.v2.access":
            return self._oauth_access(args)
        if method == "apps.connections.open":
            return {"ok": True, "url": f"ws://127.0.0.1:{self.port}/socket"}
        with self.lock:
            known_bot = self.bots.get(token or "")
        if method == "auth.test" and known_bot is not None:
            return {"ok": True, **known_bot}
        if method == "auth.test":
            return {
                "ok": True,
                "url": "https://acme.slack.com/",
                "team": "Acme",
                "user": "refold",
                "team_id": "T1",
                "user_id": "UBOT",
                "bot_id": "B1",
            }
        if method == "users.info":
            user = args.get("user")
            return {
                "ok": True,
                "user": {
                    "id": user,
                    "team_id": "T1",
                    "is_admin": user in admins,
                    "is_owner": False,
                    "is_primary_owner": False,
                    "tz": zones.get(str(user), "America/Los_Angeles"),
                },
            }
        if method == "conversations.open":
            return {"ok": True, "channel": {"id": "D" + str(args.get("users", "")).lstrip("UW")}}
        if method == "usergroups.list":
            with self.lock:
                groups = [
                    {"id": gid, "name": name, "handle": name.lower()}
                    for gid, (name, _) in self.usergroups.items()
                ]
            return {"ok": True, "usergroups": groups}
        if method == "usergroups.users.list":
            with self.lock:
                found = self.usergroups.get(str(args.get("usergroup")))
            if found is None:
                return {"ok": False, "error": "no_such_subteam"}
            return {"ok": True, "users": list(found[1])}
        if method in ("views.open", "views.update", "views.push"):
            return {"ok": True, "view": {"id": "V" + str(next(self._ts)), **(args.get("view") or {})}}
        if method in ("chat.postMessage", "chat.update") and args.get("channel") in self.not_member:
            return {"ok": False, "error": "not_in_channel"}
        if method == "chat.update" and args.get("ts"):
            # An edited message keeps its ts.
            return {"ok": True, "channel": args.get("channel"), "ts": args["ts"], "text": args.get("text")}
        if method in ("chat.postMessage", "chat.update", "chat.postEphemeral"):
            ts = f"{int(time.time())}.{next(self._ts):06d}"
            return {"ok": True, "channel": args.get("channel"), "ts": ts, "message_ts": ts}
        return {"ok": True}

    def _oauth_access(self, args: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            if args.get("grant_type") == "refresh_token":
                answer = self.refresh_tokens.pop(str(args.get("refresh_token")), None)
                return answer or {"ok": False, "error": "invalid_refresh_token"}
            answer = self.oauth_codes.pop(str(args.get("code")), None)
            return answer or {"ok": False, "error": "invalid_code"}

    async def _response_url(self, request: web.Request) -> web.Response:
        key = request.match_info["key"]
        body = await request.json()
        with self.lock:
            faults = self.response_url_faults.get(key)
            status = faults.popleft() if faults else self.response_url_status.get(key, 200)
            if status < 400:
                self._response_url_uses[key] += 1
                if self._response_url_uses[key] > self.response_url_limit:
                    status = 404  # Slack answers `used_url` once the uses are spent
            received = {"_key": key, "_at": time.monotonic(), "_status": status, **body}
            self.responses.append(received)
            self._responses_by_key[key].append(received)
        return web.Response(status=status, text="ok" if status < 400 else "no_such_response_url")


def _blocks(value: Any) -> list[dict[str, Any]] | None:
    # Form-encoded calls carry blocks as a JSON string; JSON calls carry the list itself.
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    return value if isinstance(value, list) else None


def dumps(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"))
