"""Slack OAuth stores on Redis: installations (tokens encrypted at rest) and one-time OAuth states.

slack_sdk ships no Redis store. Keys follow the credentials store's namespace:
`refold-bot:install:{enterprise|none}:{team|none}:{bot|installer-latest|installer-U…}`. An org-wide
Enterprise Grid install has no team: it is stored, and found, under team `none`.
"""

from __future__ import annotations

import json
import logging
import uuid
from logging import Logger
from typing import Any

import redis.asyncio as aioredis
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.installation_store.models.bot import Bot
from slack_sdk.oauth.installation_store.models.installation import Installation
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore

from bot.store import keys
from bot.store.crypto import Cipher, InvalidToken
from bot.store.durable import DurableWrites
from bot.store.keys import installation_prefix
from bot.store.redis import redis_errors

log = logging.getLogger(__name__)


class RedisInstallationStore(AsyncInstallationStore):
    def __init__(self, redis: aioredis.Redis, cipher: Cipher) -> None:
        self._redis = redis
        self._cipher = cipher
        self._durable = DurableWrites(redis)

    @property
    def logger(self) -> Logger:
        return log

    # --- writing -------------------------------------------------------------

    async def async_save(self, installation: Installation) -> None:
        team = None if installation.is_enterprise_install else installation.team_id
        prefix = installation_prefix(installation.enterprise_id, team)
        data = self._seal(vars(installation))
        writes = [("SET", f"{prefix}:installer-latest", data)]
        if installation.user_id:
            writes.append(("SET", f"{prefix}:installer-{installation.user_id}", data))
        if installation.bot_token:
            bot = installation.to_bot()
            writes.append(("SET", self._bot_key(bot), self._seal(vars(bot))))
        # The installation and its bot in one write: a failover never leaves one without the other.
        await self._durable.apply([key for _, key, _ in writes], *writes)

    async def async_save_bot(self, bot: Bot) -> None:
        key = self._bot_key(bot)
        await self._durable.apply([key], ("SET", key, self._seal(vars(bot))))

    @staticmethod
    def _bot_key(bot: Bot) -> str:
        team = None if bot.is_enterprise_install else bot.team_id
        return f"{installation_prefix(bot.enterprise_id, team)}:bot"

    # --- reading -------------------------------------------------------------

    async def async_find_bot(
        self, *, enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool | None = False
    ) -> Bot | None:
        data = await self._find(enterprise_id, team_id, is_enterprise_install, "bot")
        return Bot(**data) if data is not None else None

    async def async_find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        suffix = f"installer-{user_id}" if user_id else "installer-latest"
        data = await self._find(enterprise_id, team_id, is_enterprise_install, suffix)
        return Installation(**data) if data is not None else None

    async def _find(
        self, enterprise_id: str | None, team_id: str | None, org_wide: bool | None, suffix: str
    ) -> dict[str, Any] | None:
        """The workspace's own installation, else its Grid org's org-wide one.

        Slack sends `is_enterprise_install: false` from a workspace of an org-wide install for some
        surfaces and in shared channels, so the flag alone cannot say where the installation lives.
        """
        if not org_wide and team_id:
            data = await self._open(f"{installation_prefix(enterprise_id, team_id)}:{suffix}")
            if data is not None or not enterprise_id:
                return data
        return await self._open(f"{installation_prefix(enterprise_id, None)}:{suffix}")

    # --- deleting ------------------------------------------------------------

    async def async_delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        async with redis_errors():
            await self._redis.delete(f"{installation_prefix(enterprise_id, team_id)}:bot")

    async def async_delete_installation(
        self, *, enterprise_id: str | None, team_id: str | None, user_id: str | None = None
    ) -> None:
        prefix = installation_prefix(enterprise_id, team_id)
        async with redis_errors():
            if user_id:
                await self._redis.delete(f"{prefix}:installer-{user_id}")
            else:
                keys = [k async for k in self._redis.scan_iter(match=f"{prefix}:installer-*", count=200)]
                if keys:
                    await self._redis.delete(*keys)

    async def async_delete_all(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        await self.async_delete_bot(enterprise_id=enterprise_id, team_id=team_id)
        await self.async_delete_installation(enterprise_id=enterprise_id, team_id=team_id)

    # --- encryption ----------------------------------------------------------

    def _seal(self, fields: dict[str, Any]) -> bytes:
        return self._cipher.encrypt(json.dumps(fields, default=str).encode())

    async def _open(self, key: str) -> dict[str, Any] | None:
        async with redis_errors():
            token = await self._redis.get(key)
        if token is None:
            return None
        try:
            record: dict[str, Any] = json.loads(self._cipher.decrypt(token))
            return record
        except (InvalidToken, ValueError):
            # Unreadable means reinstall: treating it as absent makes Bolt answer "not installed".
            log.error("installation record %s cannot be read; the workspace must reinstall", key)
            return None


class RedisOAuthStateStore(AsyncOAuthStateStore):
    """OAuth `state` values: one-time (GETDEL) and expiring (Redis TTL)."""

    def __init__(self, redis: aioredis.Redis, expiration_seconds: int = 600) -> None:
        self._redis = redis
        self._expiration_seconds = expiration_seconds

    @property
    def logger(self) -> Logger:
        return log

    async def async_issue(self, *args: Any, **kwargs: Any) -> str:
        state = uuid.uuid4().hex
        async with redis_errors():
            await self._redis.set(keys.oauth_state(state), b"1", ex=self._expiration_seconds)
        return state

    async def async_consume(self, state: str) -> bool:
        if not state or len(state) > 100:
            return False
        async with redis_errors():
            return await self._redis.getdel(keys.oauth_state(state)) is not None
