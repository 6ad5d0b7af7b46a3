"""The lookup use case: workspace -> credentials -> (cache | Refold) -> Execution.

Concurrent lookups of the same (credentials, linked account, execution) share one Refold call: inside
a process through an in-flight future, across processes through a short Redis lease whose holder
publishes the result to the cache. Finished executions are cached in Redis (encrypted; keyed by a
fingerprint of the credentials, never the secret) so repeat lookups cost no Refold call; running
ones for 2 s at most, so Refresh stays fresh.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.asyncio.lock import Lock
from redis.exceptions import LockError, RedisError

from bot.refold.client import RefoldClient
from bot.refold.credentials import RefoldCredentials
from bot.refold.ids import normalize_execution_id, normalize_linked_account
from bot.refold.models import Execution
from bot.store.crypto import Cipher, InvalidToken
from bot.store.errors import StoreUnavailable
from bot.store.known_accounts import KnownAccounts
from bot.store.redis import NAMESPACE, redis_errors
from bot.tasks import BackgroundTasks
from bot.workspace import CredentialResolver, Workspace

log = logging.getLogger(__name__)

RUNNING_CACHE_SECONDS = 2
# A Refold call takes at most the client's retry budget in the worst case, usually ~100 ms; a lease
# outliving a crashed holder only delays the others this long before they fetch themselves.
LEASE_SECONDS = 10
LEASE_POLL_SECONDS = 0.02


@dataclass(frozen=True)
class LookupResult:
    execution: Execution
    linked_account_id: str | None


class ExecutionLookup:
    def __init__(
        self,
        resolver: CredentialResolver,
        client: RefoldClient,
        known_accounts: KnownAccounts,
        redis: aioredis.Redis,
        cipher: Cipher,
        terminal_cache_seconds: int = 600,
    ) -> None:
        self._resolver = resolver
        self._client = client
        self._known = known_accounts
        self._redis = redis
        self._cipher = cipher
        self._terminal_ttl = terminal_cache_seconds
        self._in_flight: dict[str, asyncio.Future[Execution]] = {}
        # Bookkeeping that need not delay the reply: caching, remembering accounts.
        self.bookkeeping = BackgroundTasks()

    async def lookup(
        self, workspace: Workspace, execution_id: str, linked_account_id: str | None = None
    ) -> LookupResult:
        # Validation comes first: a bad ID costs neither a Redis round trip nor a Refold call.
        canonical = normalize_execution_id(execution_id)
        override = normalize_linked_account(linked_account_id) if linked_account_id else None
        resolved = await self._resolver.resolve(workspace)
        creds = resolved.credentials
        account = creds.effective_linked_account(override)
        key = _flight_key(creds.fingerprint, account, canonical)

        cached = await self._cache_get(key)
        if cached is not None:
            return LookupResult(cached, account)

        execution = await self._single_flight(key, lambda: self._fetch(creds, canonical, override, key))

        if resolved.scope is not None and resolved.scope_id and account:
            self.bookkeeping.spawn(
                self._remember(resolved.scope.value, resolved.scope_id, account), "remember"
            )
        return LookupResult(execution, account)

    async def _remember(self, scope: str, scope_id: str, account: str) -> None:
        try:
            await self._known.remember(scope, scope_id, account)
        except StoreUnavailable:
            log.warning("could not remember linked account: Redis unavailable")

    async def _fetch(
        self, creds: RefoldCredentials, canonical: str, override: str | None, key: str
    ) -> tuple[Execution, Lock | None]:
        """Fetch once across processes: the lease holder calls Refold, the others wait for its result.

        Returns the execution and, for the lease holder, the lease to release once the result is cached.
        """
        deadline = time.monotonic() + LEASE_SECONDS + 1
        while True:
            lease = self._redis.lock(f"{NAMESPACE}:lease:{key}", timeout=LEASE_SECONDS, blocking=False)
            try:
                async with redis_errors():
                    leader = await lease.acquire()
            except StoreUnavailable:
                return await self._client.get_execution(creds, canonical, override), None
            if leader:
                try:
                    return await self._client.get_execution(creds, canonical, override), lease
                except BaseException:
                    await _release(lease)
                    raise
            # Another process is fetching: its result lands in the cache, or its lease goes away
            # (it failed, or died) and this process takes its turn.
            while time.monotonic() < deadline:
                await asyncio.sleep(LEASE_POLL_SECONDS)
                cached = await self._cache_get(key)
                if cached is not None:
                    return cached, None
                try:
                    async with redis_errors():
                        if not await lease.locked():
                            break
                except StoreUnavailable:
                    break
            else:
                return await self._client.get_execution(creds, canonical, override), None

    async def _single_flight(
        self, key: str, call: Callable[[], Awaitable[tuple[Execution, Lock | None]]]
    ) -> Execution:
        pending = self._in_flight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Execution] = asyncio.get_running_loop().create_future()
        self._in_flight[key] = future
        try:
            result, lease = await call()
        except Exception as exc:
            self._in_flight.pop(key, None)
            future.set_exception(exc)
            # Followers read the exception; mark it retrieved so an unshared one is not reported.
            future.exception()
            raise
        except BaseException:
            self._in_flight.pop(key, None)
            future.cancel()
            raise
        future.set_result(result)
        if lease is None:
            self._in_flight.pop(key, None)
        else:
            # Caching happens after the caller has its answer; until it lands, later lookups in this
            # process still find the settled future, so none of them calls Refold again.
            self.bookkeeping.spawn(self._publish(key, result, lease), "publish")
        return result

    async def _publish(self, key: str, execution: Execution, lease: Lock) -> None:
        try:
            await self._cache_put(key, execution)
        finally:
            await _release(lease)
            self._in_flight.pop(key, None)

    async def _cache_get(self, key: str) -> Execution | None:
        try:
            async with redis_errors():
                token = await self._redis.get(f"{NAMESPACE}:exec:{key}")
        except StoreUnavailable:
            return None
        if token is None:
            return None
        try:
            return Execution.model_validate_json(self._cipher.decrypt(token))
        except (InvalidToken, ValueError):
            return None

    async def _cache_put(self, key: str, execution: Execution) -> None:
        ttl = self._terminal_ttl if execution.is_terminal else RUNNING_CACHE_SECONDS
        if ttl <= 0:
            return
        token = self._cipher.encrypt(execution.model_dump_json().encode())
        try:
            async with redis_errors():
                await self._redis.set(f"{NAMESPACE}:exec:{key}", token, ex=ttl)
        except StoreUnavailable:
            log.warning("could not cache execution: Redis unavailable")


async def _release(lease: Lock) -> None:
    with contextlib.suppress(LockError, RedisError, OSError):
        await lease.release()


def _flight_key(fingerprint: str, account: str | None, execution_id: str) -> str:
    account_hash = hashlib.sha256((account or "").encode()).hexdigest()[:16]
    return f"{fingerprint}:{account_hash}:{execution_id}"
