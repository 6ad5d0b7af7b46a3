"""The Slack Web API client for a workspace, built in one place with one set of retry handlers.

Single-workspace mode has one client for the bot token; OAuth mode builds one per installation's
token (kept per token), found through the installation store.
"""

from __future__ import annotations

from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot import metrics
from bot.jobs.kinds import Origin
from bot.settings import Settings
from bot.store.installations import RedisInstallationStore

MAX_CACHED_CLIENTS = 1000


class CountingWebClient(AsyncWebClient):
    """Counts failed calls by method and Slack's error code, for the metrics."""

    async def api_call(self, api_method: str, **kwargs: Any) -> AsyncSlackResponse:
        try:
            return await super().api_call(api_method, **kwargs)
        except SlackApiError as exc:
            error = exc.response.get("error") if isinstance(exc.response.data, dict) else None
            metrics.SLACK_ERRORS.labels(api_method, str(error or f"http_{exc.response.status_code}")).inc()
            raise
        except (SlackRequestError, aiohttp.ClientError, OSError, TimeoutError):
            metrics.SLACK_ERRORS.labels(api_method, "unreachable").inc()
            raise


def new_client(settings: Settings, token: str | None) -> AsyncWebClient:
    client = CountingWebClient(token=token, base_url=settings.slack_api_url)
    # Slack's `ratelimited` answers carry Retry-After; the SDK's handler honours it.
    client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=2))
    return client


class SlackClients:
    def __init__(self, settings: Settings, installations: RedisInstallationStore | None) -> None:
        self._settings = settings
        self.installations = installations
        token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
        # In OAuth mode this tokenless client is what Bolt copies per request.
        self.default = new_client(settings, token)
        self._by_token: dict[str, AsyncWebClient] = {}

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
            if len(self._by_token) >= MAX_CACHED_CLIENTS:
                self._by_token.clear()
            client = self._by_token[bot.bot_token] = new_client(self._settings, bot.bot_token)
        return client
