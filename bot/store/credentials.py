"""Per-workspace Refold credentials in Redis, encrypted whole with MultiFernet.

A record is keyed by Slack team ID, or by enterprise ID for an org-wide Enterprise Grid install:
`refold-bot:creds:team:T123` / `refold-bot:creds:enterprise:E123`. The value is one Fernet token,
so not even the linked account or base URL is readable in Redis.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from enum import StrEnum

import redis.asyncio as aioredis
from pydantic import BaseModel, SecretStr, ValidationError, field_serializer
from redis.asyncio.client import Pipeline

from bot.refold.credentials import AuthKind, RefoldCredentials
from bot.store import keys
from bot.store.crypto import Cipher, InvalidToken
from bot.store.durable import DurableWrites
from bot.store.errors import CorruptCredentials
from bot.store.redis import redis_errors

log = logging.getLogger(__name__)


class Scope(StrEnum):
    TEAM = "team"
    ENTERPRISE = "enterprise"


class StoredCredentials(BaseModel):
    kind: AuthKind
    secret: SecretStr
    linked_account_id: str | None = None
    base_url: str | None = None
    session_expires_at: datetime | None = None
    connected_by: str | None = None
    connected_at: datetime
    # Besides workspace admins and owners: who may rerun and stop executions from Slack.
    operator_users: list[str] = []
    operator_groups: list[str] = []

    @field_serializer("secret", when_used="json")
    def _reveal_for_encryption(self, value: SecretStr) -> str:
        # Only ever serialized into the plaintext that is encrypted immediately after.
        return value.get_secret_value()

    def to_refold(self, default_base_url: str) -> RefoldCredentials:
        return RefoldCredentials(
            base_url=self.base_url or default_base_url,
            kind=self.kind,
            secret=self.secret,
            linked_account_id=self.linked_account_id,
        )

    @property
    def expired(self) -> bool:
        return self.session_expires_at is not None and self.session_expires_at <= datetime.now(UTC)


def credentials_key(scope: Scope, scope_id: str) -> str:
    return keys.credentials(scope.value, scope_id)


class CredentialStore:
    def __init__(self, redis: aioredis.Redis, cipher: Cipher) -> None:
        self._redis = redis
        self._cipher = cipher
        self._durable = DurableWrites(redis)

    async def save(self, scope: Scope, scope_id: str, creds: StoredCredentials) -> None:
        token = self._cipher.encrypt(creds.model_dump_json().encode())
        key = credentials_key(scope, scope_id)
        await self._durable.apply([key], ("SET", key, token))

    async def load(self, scope: Scope, scope_id: str) -> StoredCredentials | None:
        async with redis_errors():
            token = await self._redis.get(credentials_key(scope, scope_id))
        if token is None:
            return None
        try:
            return StoredCredentials.model_validate_json(self._cipher.decrypt(token))
        except (InvalidToken, ValidationError, ValueError):
            log.error(
                "stored credentials for %s %s cannot be read; the workspace must reconnect",
                scope.value,
                scope_id,
            )
            raise CorruptCredentials(
                f"stored credentials for {scope.value} {scope_id} cannot be read"
            ) from None

    async def delete(self, scope: Scope, scope_id: str) -> bool:
        async with redis_errors():
            return bool(await self._redis.delete(credentials_key(scope, scope_id)))

    async def rotate_all(self) -> tuple[int, int]:
        """Re-encrypt every record under the newest key. Returns (rotated, unreadable).

        Each record is swapped in a WATCH/MULTI transaction, so a connect that lands meanwhile is never overwritten.
        """
        rotated = unreadable = 0
        async with redis_errors():
            async for key in self._redis.scan_iter(match=keys.CREDENTIALS_PATTERN, count=200):
                result = await self._rotate_one(key)
                rotated += result is True
                unreadable += result is False
        return rotated, unreadable

    async def _rotate_one(self, key: bytes) -> bool | None:
        """True when re-encrypted, False when no key reads it, None when it is gone. redis-py's
        `transaction` runs the swap again whenever the record changed under it."""

        async def swap(pipe: Pipeline) -> bool | None:
            token = await pipe.get(key)
            if token is None:
                return None
            try:
                fresh = self._cipher.rotate(token)
            except InvalidToken:
                log.error("record %s cannot be decrypted with any key; left as is", key.decode())
                return False
            pipe.multi()
            pipe.set(key, fresh, keepttl=True)
            return True

        result: bool | None = await self._redis.transaction(swap, key, value_from_callable=True)
        return result
