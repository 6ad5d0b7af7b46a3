"""A loopback Slack: a Web API that records calls, and `response_url` receivers.

Answers follow Slack's documented shapes (`{"ok": true, ...}` / `{"ok": false, "error": ...}`).
Errors can be programmed per method, and per response_url.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import json
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.fakes.loopback import LoopbackServer


@dataclass
class SlackCall:
    method: str
    token: str | None
    args: dict[str, Any]


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

    def reset(self) -> None:
        with self.lock:
            self.calls.clear()
            self.responses.clear()
            self._responses_by_key.clear()
            self.admins.clear()
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

    # --- programming and reading ----------------------------------------------

    def response_url(self, key: str) -> str:
        return f"{self.url}/response/{key}"

    def fail(self, method: str, error: str, **kwargs: Any) -> None:
        with self.lock:
            self.errors[method].append(ProgrammedError(error, **kwargs))

    def calls_to(self, method: str) -> list[SlackCall]:
        with self.lock:
            return [c for c in self.calls if c.method == method]

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
        with self.lock:
            self.calls.append(SlackCall(method, token, args))
            queue = self.errors.get(method)
            programmed = None
            if queue:
                programmed = queue[0]
                programmed.times -= 1
                if programmed.times <= 0:
                    queue.popleft()
            admins = set(self.admins)
            delay = self.latency.get(method, 0.0)
        if delay:
            await asyncio.sleep(delay)
        if programmed is not None:
            headers = (
                {"Retry-After": str(programmed.retry_after)} if programmed.retry_after is not None else {}
            )
            return web.json_response(
                {"ok": False, "error": programmed.error}, status=programmed.status, headers=headers
            )
        return web.json_response(self._answer(method, args, admins, token))

    def _answer(
        self, method: str, args: dict[str, Any], admins: set[str], token: str | None
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


def dumps(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"))
