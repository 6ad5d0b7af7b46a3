"""The Slack Web API client for a workspace, built in one place with one set of retry handlers.

Single-workspace mode has one client for the bot token; OAuth mode builds one per installation's
token (kept per token), found through the installation store.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import aiohttp
from cachetools import LRUCache
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot import metrics
from bot.jobs.kinds import Origin
from bot.settings import Settings
from bot.store.installations import RedisInstallationStore
from bot.store.rate_lines import TurnTooLate
from bot.store.slack_pacer import SlackPacer

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_CACHED_CLIENTS = 1000
# A call Slack still answers 429 after pacing (another app on the workspace, an unpublished limit) is
# waited out and tried again this many times before its caller hears `ratelimited`.
MAX_RATE_LIMITED_RETRIES = 8
_CHANNEL_ARGS = ("json", "params", "data")


def workspace_name(token: str | None) -> str:
    """A non-secret name for the installation a token acts for: a short hash, never the token."""
    return hashlib.sha256(token.encode()).hexdigest()[:16] if token else "default"


def channel_of(kwargs: dict[str, Any]) -> str | None:
    for part in _CHANNEL_ARGS:
        args = kwargs.get(part)
        if isinstance(args, dict) and isinstance(args.get("channel"), str):
            return str(args["channel"])
    return None


class SlackTurnTooLate(Exception):
    """The call's turn under Slack's limits would come after the deadline `sent_within` set: not sent."""


# How long this task's Slack calls may wait for their turn (a time.monotonic() deadline); None: as
# long as it takes.
_TURN_BY: contextvars.ContextVar[float | None] = contextvars.ContextVar("turn_by", default=None)


async def sent_within(
    client: AsyncWebClient, method: str, channel: str | None, seconds: float, call: Callable[[], Awaitable[T]]
) -> T | None:
    """`call`, whose one Slack call is `method` in `channel`, if that call's turn comes within
    `seconds`; else None, with nothing sent: for background work that would rather come back later
    than hold a worker slot waiting in the pacer's line."""
    if seconds <= 0 or await expected_wait(client, method, channel) > seconds:
        return None
    token = _TURN_BY.set(time.monotonic() + seconds)
    try:
        return await call()
    except SlackTurnTooLate:
        return None
    finally:
        _TURN_BY.reset(token)


# A check to make once a call's turn has come, just before it goes to Slack (see `claimed_on_send`).
_ON_SEND: contextvars.ContextVar[Callable[[], Awaitable[None]] | None] = contextvars.ContextVar(
    "on_send", default=None
)


@contextlib.contextmanager
def claimed_on_send(claim: Callable[[], Awaitable[None]]) -> Iterator[None]:
    """Run `claim` once, right before the next Slack call of this task leaves (after its pacing), so
    a message that must go out once is claimed when nothing can come between the claim and Slack
    getting it: no wait for a rate-limit turn, where a dying worker would leave a claim unsent. The
    claim raises to stop the call."""
    token = _ON_SEND.set(claim)
    try:
        yield
    finally:
        _ON_SEND.reset(token)


class CountingWebClient(AsyncWebClient):
    """Paces every call within Slack's limits across processes, waits out a 429's Retry-After (every
    process then holds off that budget), and counts failed calls by method and error, for the metrics."""

    pacer: SlackPacer | None = None

    async def api_call(self, api_method: str, **kwargs: Any) -> AsyncSlackResponse:
        token = kwargs.get("token") or self.token
        workspace, channel = workspace_name(token), channel_of(kwargs)
        for attempt in range(MAX_RATE_LIMITED_RETRIES + 1):
            if self.pacer is not None:
                await _paced(self.pacer, workspace, api_method, channel, _TURN_BY.get())
            claim = _ON_SEND.get()
            if claim is not None:
                _ON_SEND.set(None)
                await claim()
            try:
                return await super().api_call(api_method, **kwargs)
            except SlackApiError as exc:
                status = exc.response.status_code
                error = exc.response.get("error") if isinstance(exc.response.data, dict) else None
                metrics.SLACK_ERRORS.labels(api_method, str(error or f"http_{status}")).inc()
                if status != 429 or self.pacer is None or attempt == MAX_RATE_LIMITED_RETRIES:
                    raise
                retry_after = _retry_after(exc.response.headers)
                log.info("Slack answered %s with 429; every process waits %.0f s", api_method, retry_after)
                await self.pacer.hold(workspace, api_method, channel, retry_after)
            except (SlackRequestError, aiohttp.ClientError, OSError, TimeoutError):
                metrics.SLACK_ERRORS.labels(api_method, "unreachable").inc()
                raise
        raise AssertionError("unreachable: the last attempt returns or raises")


async def expected_wait(client: AsyncWebClient, method: str, channel: str | None) -> float:
    """Seconds a `method` call made now would wait for its turn (0 for a client that is not paced),
    for background work that would rather come back later than hold a worker slot in the line."""
    if not isinstance(client, CountingWebClient) or client.pacer is None:
        return 0.0
    try:
        return await client.pacer.estimate(workspace_name(client.token), method, channel)
    except ValueError:
        return 0.0


async def _paced(
    pacer: SlackPacer, workspace: str, method: str, channel: str | None, deadline: float | None
) -> None:
    try:
        await pacer.turn(workspace, method, channel, deadline=deadline)
    except TurnTooLate:
        raise SlackTurnTooLate(method) from None
    except ValueError:
        # A channel argument no budget can be named after (never expected): sent unpaced, not lost.
        log.warning("a %s call could not be paced: its channel argument is not an ID", method)


def _retry_after(headers: Any) -> float:
    for name in ("Retry-After", "retry-after"):
        value = headers.get(name) if hasattr(headers, "get") else None
        if isinstance(value, list):
            value = value[0] if value else None
        if value is not None:
            try:
                return max(1.0, float(value))
            except ValueError:
                break
    return 1.0


def new_client(settings: Settings, token: str | None, pacer: SlackPacer | None = None) -> AsyncWebClient:
    client = CountingWebClient(token=token, base_url=settings.slack_api_url)
    client.pacer = pacer
    return client


class SlackClients:
    def __init__(
        self,
        settings: Settings,
        installations: RedisInstallationStore | None,
        pacer: SlackPacer | None = None,
    ) -> None:
        self._settings = settings
        self.installations = installations
        self._pacer = pacer
        token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
        # In OAuth mode this tokenless client is what Bolt copies per request.
        self.default = new_client(settings, token, pacer)
        self._by_token: LRUCache[str, AsyncWebClient] = LRUCache(maxsize=MAX_CACHED_CLIENTS)

    async def for_origin(self, origin: Origin) -> AsyncWebClient | None:
        """The client that acts for this workspace; None when it has no installation (any more)."""
        if self.installations is None:
            return self.default
        bot = await self.installations.async_find_bot(
            enterprise_id=origin.enterprise_id, team_id=origin.team_id, is_enterprise_install=origin.org_wide
        )
        if bot is None or not bot.bot_token:
            return None
        client = self._by_token.get(bot.bot_token)
        if client is None:
            client = self._by_token[bot.bot_token] = new_client(self._settings, bot.bot_token, self._pacer)
        return client
