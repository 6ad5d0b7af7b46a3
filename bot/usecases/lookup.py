"""The lookup use case: resolve credentials -> cache -> single-flight -> fetch from Refold.

Concurrent lookups of the same (credentials, linked account, execution) share one Refold call: inside
a process through an in-flight future, across processes through a short Redis lease whose holder
publishes the result to the cache.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import redis.asyncio as aioredis
import stamina

from bot import metrics
from bot.refold.client import RefoldClient
from bot.refold.credentials import AuthKind, RefoldCredentials
from bot.refold.errors import NotFound
from bot.refold.ids import normalize_execution_id, normalize_linked_account
from bot.refold.models import Execution
from bot.store.errors import StoreUnavailable
from bot.store.executions import ExecutionCache, FetchLease, flight_key
from bot.store.known_accounts import KnownAccounts
from bot.store.recent import RecentLookup, RecentLookups
from bot.tasks import BackgroundTasks
from bot.usecases.workspace import CredentialResolver, ResolvedCredentials, Workspace

log = logging.getLogger(__name__)

LEASE_POLL_SECONDS = 0.02
LEASE_POLL_MAX_SECONDS = 0.5
# A lease holder keeps its lease while it waits its turn at the Refold rate limit (up to a minute)
# and its call's retries; a holder alive but stuck longer than this is not waited for.
LEASE_WAIT_SECONDS = 80.0
# How long a lookup waits for Redis to come back (a Sentinel failover takes a few seconds) before the
# person is told it is unavailable.
REDIS_PATIENCE_SECONDS = 4.0


SEARCH_LIMIT = 5  # recently used linked accounts tried when the default has no such execution


@dataclass(frozen=True)
class LookupResult:
    execution: Execution
    linked_account_id: str | None
    # Set when the default linked account had no such execution and a recent one did.
    searched_from: str | None = None


class ExecutionLookup:
    def __init__(
        self,
        resolver: CredentialResolver,
        client: RefoldClient,
        known_accounts: KnownAccounts,
        redis: aioredis.Redis,
        cache: ExecutionCache,
        recent: RecentLookups | None = None,
    ) -> None:
        self._recent = recent
        self._resolver = resolver
        self._client = client
        self._known = known_accounts
        self._redis = redis
        self._cache = cache
        self._in_flight: dict[str, asyncio.Future[Execution]] = {}
        # Bookkeeping that need not delay the reply: caching, remembering accounts.
        self.bookkeeping = BackgroundTasks()

    async def lookup(
        self,
        workspace: Workspace,
        execution_id: str,
        linked_account_id: str | None = None,
        *,
        fresh: bool = False,
    ) -> LookupResult:
        """`fresh`: skip the cache (right after a rerun or stop, a cached state is already old)."""
        try:
            # A Redis failover takes a few seconds; a lookup waits that out rather than failing.
            async for attempt in stamina.retry_context(
                on=StoreUnavailable,
                attempts=None,
                timeout=REDIS_PATIENCE_SECONDS,
                wait_initial=0.2,
                wait_max=1.0,
            ):
                with attempt:
                    result = await self._lookup(workspace, execution_id, linked_account_id, fresh=fresh)
        except Exception as exc:
            metrics.LOOKUPS.labels(outcome_of(exc)).inc()
            raise
        metrics.LOOKUPS.labels("ok").inc()
        return result

    async def _lookup(
        self, workspace: Workspace, execution_id: str, linked_account_id: str | None, *, fresh: bool
    ) -> LookupResult:
        # Validation comes first: a bad ID costs neither a Redis round trip nor a Refold call.
        canonical = normalize_execution_id(execution_id)
        override = normalize_linked_account(linked_account_id) if linked_account_id else None
        resolved = await self._resolver.resolve(workspace)
        creds = resolved.credentials
        account = creds.effective_linked_account(override)
        try:
            result = await self._lookup_as(creds, canonical, account, override, fresh=fresh)
        except NotFound as missing:
            # Named by the person, or bound by a session token: that account it is.
            if override is not None or creds.kind is AuthKind.SESSION_TOKEN or resolved.scope is None:
                raise
            result = await self._search(resolved, canonical, account, missing)
        if resolved.scope is not None and resolved.scope_id and result.linked_account_id:
            self.bookkeeping.spawn(
                self._remember(resolved.scope.value, resolved.scope_id, result.linked_account_id), "remember"
            )
        return result

    async def _lookup_as(
        self,
        creds: RefoldCredentials,
        canonical: str,
        account: str | None,
        override: str | None,
        *,
        fresh: bool = False,
    ) -> LookupResult:
        flight = flight_key(creds.fingerprint, account, canonical)
        cached = None if fresh else await self._cache.get(flight)
        if not fresh:
            metrics.CACHE_READS.labels("miss" if cached is None else "hit").inc()
        if cached is not None:
            return LookupResult(cached, account)
        execution = await self._single_flight(flight, lambda: self._fetch(creds, canonical, override, flight))
        return LookupResult(execution, account)

    async def _search(
        self, resolved: ResolvedCredentials, canonical: str, default: str | None, missing: NotFound
    ) -> LookupResult:
        """Not under the default linked account: try the ones this workspace used recently, at once.

        At most SEARCH_LIMIT more Refold calls, each through the key's rate limit; the most recently
        used account that has the execution wins.
        """
        scope, scope_id = resolved.scope, resolved.scope_id
        try:
            recent = await self._known.recent(scope.value, scope_id) if scope and scope_id else []
        except StoreUnavailable:
            recent = []
        candidates = [a for a in recent if a != default][:SEARCH_LIMIT]
        if not candidates:
            raise missing
        attempts = await asyncio.gather(
            *(self._lookup_as(resolved.credentials, canonical, a, a) for a in candidates),
            return_exceptions=True,
        )
        for candidate, attempt in zip(candidates, attempts, strict=True):
            if isinstance(attempt, LookupResult):
                log.info("execution found under a recently used linked account, not the default")
                return LookupResult(attempt.execution, candidate, searched_from=default)
        for attempt in attempts:
            if isinstance(attempt, BaseException) and not isinstance(attempt, NotFound):
                raise attempt  # Refold failing is not the same as "not there"
        raise NotFound(
            missing.message,
            status_code=missing.status_code,
            error_code=missing.error_code,
            request_id=missing.request_id,
            searched=candidates,
        )

    def note_lookup(self, workspace: Workspace, result: LookupResult, user_id: str | None) -> None:
        """Remember a person's lookup for the workspace's App Home, after the reply."""
        if self._recent is None:
            return
        execution = result.execution
        entry = RecentLookup(
            execution_id=execution.id or "?",
            name=execution.name,
            status=execution.status,
            user_id=user_id,
            at=datetime.now(UTC),
        )
        self.bookkeeping.spawn(self._note(workspace.label, entry), "recent")

    async def _note(self, workspace: str, entry: RecentLookup) -> None:
        if self._recent is None:
            return
        try:
            await self._recent.add(workspace, entry)
        except StoreUnavailable:
            log.warning("could not record a recent lookup: Redis unavailable")

    async def recent(self, workspace: Workspace, count: int = 10) -> list[RecentLookup]:
        return await self._recent.latest(workspace.label, count) if self._recent else []

    async def forget_recent(self, workspace: Workspace) -> None:
        if self._recent is not None:
            await self._recent.forget(workspace.label)

    async def _remember(self, scope: str, scope_id: str, account: str) -> None:
        try:
            await self._known.remember(scope, scope_id, account)
        except StoreUnavailable:
            log.warning("could not remember linked account: Redis unavailable")

    async def _single_flight(
        self, flight: str, call: Callable[[], Awaitable[tuple[Execution, FetchLease | None]]]
    ) -> Execution:
        """In process: the first caller fetches, later ones await its future."""
        pending = self._in_flight.get(flight)
        if pending is not None:
            metrics.SHARED_FETCHES.labels("process").inc()
            return await asyncio.shield(pending)
        future: asyncio.Future[Execution] = asyncio.get_running_loop().create_future()
        self._in_flight[flight] = future
        try:
            result, lease = await call()
        except Exception as exc:
            self._in_flight.pop(flight, None)
            future.set_exception(exc)
            # Followers read the exception; mark it retrieved so an unshared one is not reported.
            future.exception()
            raise
        except BaseException:
            self._in_flight.pop(flight, None)
            future.cancel()
            raise
        future.set_result(result)
        if lease is None:
            self._in_flight.pop(flight, None)
        else:
            # Caching happens after the caller has its answer; until it lands, later lookups in this
            # process still find the settled future, so none of them calls Refold again.
            self.bookkeeping.spawn(self._publish(flight, result, lease), "publish")
        return result

    async def _fetch(
        self, creds: RefoldCredentials, canonical: str, override: str | None, flight: str
    ) -> tuple[Execution, FetchLease | None]:
        """Across processes: the lease holder calls Refold, the others wait for its cached result.

        Returns the execution and, for the lease holder, the lease to release once it is cached.
        """
        deadline = time.monotonic() + LEASE_WAIT_SECONDS
        while True:
            lease = FetchLease(self._redis, flight)
            try:
                leader = await lease.acquire()
            except StoreUnavailable:
                return await self._client.get_execution(creds, canonical, override), None
            if leader:
                try:
                    async with lease.kept():
                        return await self._client.get_execution(creds, canonical, override), lease
                except BaseException:
                    await lease.release()
                    raise
            # Another process is fetching: its result lands in the cache, or its lease goes away
            # (it failed, or died) and this process takes its turn. Polled quickly at first (a
            # Refold call takes ~100 ms), then less often (the holder may be waiting in line).
            poll = LEASE_POLL_SECONDS
            while time.monotonic() < deadline:
                await asyncio.sleep(poll)
                poll = min(poll * 1.5, LEASE_POLL_MAX_SECONDS)
                cached = await self._cache.get(flight)
                if cached is not None:
                    metrics.SHARED_FETCHES.labels("redis").inc()
                    return cached, None
                if not await lease.held_elsewhere():
                    break
            else:
                return await self._client.get_execution(creds, canonical, override), None

    async def _publish(self, flight: str, execution: Execution, lease: FetchLease) -> None:
        try:
            await self._cache.put(flight, execution)
        finally:
            await lease.release()
            self._in_flight.pop(flight, None)


def outcome_of(exc: Exception) -> str:
    """A failed lookup's label: the error's kind where it has one, else its type."""
    kind = getattr(exc, "kind", None)
    return str(getattr(kind, "value", None) or type(exc).__name__)
