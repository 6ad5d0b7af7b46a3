"""The process's shared parts, built once: one httpx pool, one Redis pool, one cipher."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import redis.asyncio as aioredis

from bot.connect import ConnectService
from bot.lookup import ExecutionLookup
from bot.refold.client import RefoldClient, RetryPolicy, make_http_client
from bot.refold.credentials import AuthKind, RefoldCredentials
from bot.refold.ratelimit import RefoldRateLimiter
from bot.settings import Settings
from bot.store.credentials import CredentialStore
from bot.store.crypto import Cipher
from bot.store.known_accounts import KnownAccounts
from bot.store.redis import make_redis
from bot.workspace import CredentialResolver


@dataclass
class Deps:
    settings: Settings
    http: httpx.AsyncClient
    redis: aioredis.Redis
    cipher: Cipher
    refold: RefoldClient
    credentials: CredentialStore
    known_accounts: KnownAccounts
    resolver: CredentialResolver
    lookup: ExecutionLookup
    connect: ConnectService

    async def aclose(self) -> None:
        await self.lookup.bookkeeping.drain(2.0)
        await self.http.aclose()
        await self.redis.aclose()


def fallback_credentials(settings: Settings) -> RefoldCredentials | None:
    if settings.refold_api_key is None:
        return None
    return RefoldCredentials(
        base_url=settings.refold_api_url,
        kind=AuthKind.API_KEY,
        secret=settings.refold_api_key,
        linked_account_id=settings.refold_linked_account_id,
    )


def build_deps(settings: Settings, retry: RetryPolicy | None = None) -> Deps:
    http = make_http_client(settings.refold_timeout_seconds)
    redis = make_redis(settings)
    cipher = Cipher(settings.credential_keys)
    refold = RefoldClient(http, retry, RefoldRateLimiter(redis))
    store = CredentialStore(redis, cipher)
    known = KnownAccounts(redis)
    resolver = CredentialResolver(
        store, settings.refold_api_url, fallback_credentials(settings), settings.credentials_cache_seconds
    )
    lookup = ExecutionLookup(resolver, refold, known, redis, cipher, settings.terminal_cache_seconds)
    connect = ConnectService(settings, store, known, refold, resolver)
    return Deps(settings, http, redis, cipher, refold, store, known, resolver, lookup, connect)
