"""Bolt's installation-store authorize, made safe for several processes and cheap per request.

- `cache_enabled`: the auth.test result is kept per token, so a request costs one Redis read, not a
  Redis read plus an auth.test call.
- Token rotation takes a Redis lock per installation and re-reads the installation inside it, so two
  workers never spend the same refresh token: the second finds the first one's new tokens.
"""

from __future__ import annotations

import logging
import time

import redis.asyncio as aioredis
from slack_bolt.authorization.async_authorize import AsyncInstallationStoreAuthorize
from slack_sdk.oauth.installation_store.models.installation import Installation
from slack_sdk.web.async_client import AsyncWebClient

from bot.store import keys
from bot.store.installations import RedisInstallationStore
from bot.store.keys import installation_prefix

log = logging.getLogger(__name__)

ROTATION_LOCK_SECONDS = 30


def _expires_soon(installation: Installation, minutes: int) -> bool:
    horizon = time.time() + minutes * 60
    expiries = [installation.bot_token_expires_at, installation.user_token_expires_at]
    return any(expiry is not None and expiry <= horizon for expiry in expiries)


class RotationSafeAuthorize(AsyncInstallationStoreAuthorize):
    def __init__(
        self,
        *,
        redis: aioredis.Redis,
        store: RedisInstallationStore,
        client_id: str,
        client_secret: str,
        client: AsyncWebClient,
        rotation_minutes: int = 120,
    ) -> None:
        super().__init__(
            logger=log,
            installation_store=store,
            client_id=client_id,
            client_secret=client_secret,
            token_rotation_expiration_minutes=rotation_minutes,
            cache_enabled=True,
            client=client,
        )
        self._redis = redis
        self._store = store
        self._minutes = rotation_minutes

    async def _rotate_and_save_tokens_if_necessary(
        self, installation: Installation | None
    ) -> Installation | None:
        if installation is None or (
            installation.bot_refresh_token is None and installation.user_refresh_token is None
        ):
            return None
        if not _expires_soon(installation, self._minutes):
            return None
        team = None if installation.is_enterprise_install else installation.team_id
        name = keys.token_rotation_lock(installation_prefix(installation.enterprise_id, team))
        async with self._redis.lock(
            name, timeout=ROTATION_LOCK_SECONDS, blocking_timeout=ROTATION_LOCK_SECONDS
        ):
            # Another worker may have rotated while this one waited: read what is stored now.
            current = await self._store.async_find_installation(
                enterprise_id=installation.enterprise_id,
                team_id=team,
                is_enterprise_install=installation.is_enterprise_install,
            )
            refreshed = await super()._rotate_and_save_tokens_if_necessary(current or installation)
            if refreshed is None and current is not None and current.bot_token != installation.bot_token:
                return current
            if refreshed is not None:
                log.info("rotated tokens for %s", installation_prefix(installation.enterprise_id, team))
            return refreshed
