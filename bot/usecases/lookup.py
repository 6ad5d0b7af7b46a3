"""The lookup use case: resolve credentials -> single-flight -> cache -> fetch from Refold.

Concurrent lookups of the same (credentials, linked account, execution) share one Refold call: inside
a process through an in-flight future, across processes through a short Redis lease whose holder
publishes the result to the cache.

Round trips to Redis for a fresh lookup: the credentials (unless this process read them in the last
few seconds), then one script that reads the cache or takes the lease and the rate-limit turn; after
the answer, one pipeline with everything the lookup writes (bench/results.md counts them).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
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
from bot.store.ratelimit import RefoldRateLimiter
from bot.store.recent import RecentLookup, RecentLookups
from bot.store.redis import redis_errors
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


@dataclass
class _Writes:
    """What one lookup writes once it has its answer: sent together, in one pipeline."""

    published: list[tuple[str, Execution, FetchLease]] = field(default_factory=list)
    account: tuple[str, str, str] | None = None  # scope, scope ID, linked account that worked
    recent: tuple[str, RecentLookup] | None = None  # workspace, entry for its App Home

    def __bool__(self) -> bool:
        return bool(self.published or self.account or self.recent)


class ExecutionLookup:
    def __init__(
        self,
        resolver: CredentialResolver,
        client: RefoldClient,
        known_accounts: KnownAccounts,
        redis: aioredis.Redis,
        cache: ExecutionCache,
        recent: RecentLookups | None = None,
        turns: RefoldRateLimiter | None = None,
    ) -> None:
        self._recent = recent
        self._resolver = resolver
        self._client = client
        self._known = known_accounts
        self._redis = redis
        self._cache = cache
        # The Refold client's own limiter: a lease holder takes its turn in the same round trip.
        self._turns = turns
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
        user_id: str | None = None,
    ) -> LookupResult:
        """`fresh`: skip the cache (right after a rerun or stop, a cached state is already old).
        `user_id`: a person asked; the workspace's App Home lists it among its recent lookups."""
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
                    writes = _Writes()
                    try:
                        result = await self._lookup(
                            workspace, execution_id, linked_account_id, writes, fresh=fresh
                        )
                        if user_id is not None and self._recent is not None:
                            writes.recent = (workspace.label, recent_entry(result, user_id))
                    finally:
                        # Even a failed lookup may hold a lease another of its flights took.
                        if writes:
                            self.bookkeeping.spawn(self._write(writes), "bookkeeping")
        except Exception as exc:
            metrics.LOOKUPS.labels(outcome_of(exc)).inc()
            raise
        metrics.LOOKUPS.labels("ok").inc()
        return result

    async def _lookup(
        self,
        workspace: Workspace,
        execution_id: str,
        linked_account_id: str | None,
        writes: _Writes,
        *,
        fresh: bool,
    ) -> LookupResult:
        # Validation comes first: a bad ID costs neither a Redis round trip nor a Refold call.
        canonical = normalize_execution_id(execution_id)
        override = normalize_linked_account(linked_account_id) if linked_account_id else None
        resolved = await self._resolver.resolve(workspace)
        creds = resolved.credentials
        account = creds.effective_linked_account(override)
        try:
            result = await self._lookup_as(creds, canonical, account, override, writes, fresh=fresh)
        except NotFound as missing:
            # Named by the person, or bound by a session token: that account it is.
            if override is not None or creds.kind is AuthKind.SESSION_TOKEN or resolved.scope is None:
                raise
            result = await self._search(resolved, canonical, account, missing, writes)
        if resolved.scope is not None and resolved.scope_id and result.linked_account_id:
            writes.account = (resolved.scope.value, resolved.scope_id, result.linked_account_id)
        return result

    async def _lookup_as(
        self,
        creds: RefoldCredentials,
        canonical: str,
        account: str | None,
        override: str | None,
        writes: _Writes,
        *,
        fresh: bool = False,
    ) -> LookupResult:
        """In process: the first caller of a flight looks, later ones await its future. The future is
        in place before the first await, so no second caller of this process ever asks Redis."""
        flight = flight_key(creds.fingerprint, account, canonical)
        pending = self._in_flight.get(flight)
        if pending is not None:
            metrics.SHARED_FETCHES.labels("process").inc()
            return LookupResult(await asyncio.shield(pending), account)
        future: asyncio.Future[Execution] = asyncio.get_running_loop().create_future()
        self._in_flight[flight] = future
        try:
            execution, lease = await self._fetch(creds, canonical, override, flight, fresh=fresh)
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
        future.set_result(execution)
        if lease is None:
            self._in_flight.pop(flight, None)
        else:
            # Caching happens after the caller has its answer; until it lands, later lookups in this
            # process still find the settled future, so none of them calls Refold again.
            writes.published.append((flight, execution, lease))
        return LookupResult(execution, account)

    async def _search(
        self,
        resolved: ResolvedCredentials,
        canonical: str,
        default: str | None,
        missing: NotFound,
        writes: _Writes,
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
            *(self._lookup_as(resolved.credentials, canonical, a, a, writes) for a in candidates),
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

    async def recent(self, workspace: Workspace, count: int = 10) -> list[RecentLookup]:
        return await self._recent.latest(workspace.label, count) if self._recent else []

    async def forget_recent(self, workspace: Workspace) -> None:
        if self._recent is not None:
            await self._recent.forget(workspace.label)

    async def _fetch(
        self, creds: RefoldCredentials, canonical: str, override: str | None, flight: str, *, fresh: bool
    ) -> tuple[Execution, FetchLease | None]:
        """Across processes: the lease holder calls Refold, the others wait for its cached result.

        Returns the execution and, for the lease holder, the lease to release once it is cached.
        """
        deadline = time.monotonic() + LEASE_WAIT_SECONDS
        poll = LEASE_POLL_SECONDS
        first = True
        while True:
            lease = FetchLease(self._redis, flight)
            turn = self._turns.offer(creds.fingerprint) if self._turns is not None else None
            try:
                # A fresh lookup skips the cache once: what a holder it waited for cached is newer.
                start = await self._cache.start(flight, lease, fresh=fresh and first, turn=turn)
            except StoreUnavailable:
                return await self._client.get_execution(creds, canonical, override), None
            if first and not fresh:
                metrics.CACHE_READS.labels("miss" if start.cached is None else "hit").inc()
            if start.cached is not None:
                if not first:
                    metrics.SHARED_FETCHES.labels("redis").inc()
                return start.cached, None
            if start.leader:
                try:
                    async with lease.kept():
                        execution = await self._client.get_execution(
                            creds, canonical, override, admitted_at=start.turn_granted_at
                        )
                        return execution, lease
                except BaseException:
                    await lease.release()
                    raise
            if time.monotonic() >= deadline:
                return await self._client.get_execution(creds, canonical, override), None
            # Another process is fetching: its result lands in the cache, or its lease goes away (it
            # failed, or died) and this process takes its turn. Polled quickly at first (a Refold
            # call takes ~100 ms), then less often (the holder may be waiting in line).
            await asyncio.sleep(poll)
            poll = min(poll * 1.5, LEASE_POLL_MAX_SECONDS)
            first = False

    async def _write(self, writes: _Writes) -> None:
        try:
            async with redis_errors(), self._redis.pipeline(transaction=False) as pipe:
                for flight, execution, lease in writes.published:
                    self._cache.put_in(pipe, flight, execution)
                    lease.release_in(pipe)
                if writes.account is not None:
                    self._known.remember_in(pipe, *writes.account)
                if writes.recent is not None and self._recent is not None:
                    self._recent.add_in(pipe, *writes.recent)
                await pipe.execute()
        except StoreUnavailable:
            # A lease not given back lapses within LEASE_SECONDS.
            log.warning("could not cache or record a lookup: Redis unavailable")
        finally:
            for flight, _, _ in writes.published:
                self._in_flight.pop(flight, None)


def recent_entry(result: LookupResult, user_id: str) -> RecentLookup:
    execution = result.execution
    return RecentLookup(
        execution_id=execution.id or "?",
        name=execution.name,
        status=execution.status,
        user_id=user_id,
        at=datetime.now(UTC),
    )


def outcome_of(exc: Exception) -> str:
    """A failed lookup's label: the error's kind where it has one, else its type."""
    kind = getattr(exc, "kind", None)
    return str(getattr(kind, "value", None) or type(exc).__name__)
