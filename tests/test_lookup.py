"""The lookup use case on its own: resolve -> cache -> single-flight -> fetch, on a real Redis.

Two `ExecutionLookup`s with their own Redis clients stand for two processes.
"""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr
from pyrate_limiter import Duration, Rate

from bot.refold.client import RefoldClient, RetryPolicy
from bot.refold.credentials import AuthKind, RefoldCredentials
from bot.refold.errors import NotFound, RefoldBusy
from bot.refold.ids import InvalidExecutionId
from bot.store import keys
from bot.store.credentials import CredentialStore
from bot.store.crypto import Cipher
from bot.store.errors import StoreUnavailable
from bot.store.executions import LEASE_SECONDS, ExecutionCache, FetchLease, flight_key
from bot.store.known_accounts import KnownAccounts
from bot.store.ratelimit import RefoldRateLimiter
from bot.store.recent import RecentLookups
from bot.usecases.lookup import ExecutionLookup
from bot.usecases.workspace import CredentialResolver, Workspace
from tests.fakes.refold import FakeRefold, errored_doc, running_doc
from tests.harness import API_KEY, EXEC_ID

WORKSPACE = Workspace("T1")


class Process:
    """What one bot process holds for lookups: its own Redis client and HTTP pool."""

    def __init__(self, redis_url: str, refold: FakeRefold, key: str) -> None:
        self.redis = aioredis.from_url(redis_url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self.http = httpx.AsyncClient()
        cipher = Cipher([key])
        fallback = RefoldCredentials(refold.url, AuthKind.API_KEY, SecretStr(API_KEY), "acme")
        resolver = CredentialResolver(CredentialStore(self.redis, cipher), refold.url, fallback, 0)
        self.cache = ExecutionCache(self.redis, cipher)
        self.lookup = ExecutionLookup(
            resolver,
            RefoldClient(self.http, RetryPolicy(attempts=1)),
            KnownAccounts(self.redis),
            self.redis,
            self.cache,
        )
        self.flight = flight_key(fallback.fingerprint, "acme", EXEC_ID)

    async def close(self) -> None:
        await self.lookup.bookkeeping.drain(2)
        await self.http.aclose()
        await self.redis.aclose()


@pytest.fixture
async def processes(redis_url: str, refold: FakeRefold, credentials_key: str):
    refold.api_keys.add(API_KEY)
    made = [Process(redis_url, refold, credentials_key) for _ in range(2)]
    yield made
    for process in made:
        await process.close()


async def test_a_cached_execution_costs_no_refold_call(processes, refold: FakeRefold) -> None:
    first, second = processes
    refold.add_execution(EXEC_ID, errored_doc(), linked_account_id="acme")
    fetched = await first.lookup.lookup(WORKSPACE, EXEC_ID)
    await first.lookup.bookkeeping.drain(2)  # the result is cached after the caller has it
    cached = await second.lookup.lookup(WORKSPACE, EXEC_ID.upper())
    assert refold.count("get") == 1
    assert cached.execution == fetched.execution and cached.linked_account_id == "acme"


async def test_a_running_execution_is_cached_only_briefly(processes, refold: FakeRefold) -> None:
    first, _ = processes
    refold.add_execution(EXEC_ID, running_doc(), linked_account_id="acme")
    await first.lookup.lookup(WORKSPACE, EXEC_ID)
    await first.lookup.bookkeeping.drain(2)
    ttl = await first.redis.ttl(f"refold-bot:exec:{first.flight}")
    assert 0 < ttl <= 2


async def test_a_lease_follower_waits_for_the_holders_result(processes, refold: FakeRefold) -> None:
    first, second = processes
    refold.add_execution(EXEC_ID, errored_doc(), linked_account_id="acme")
    refold.latency = 0.3
    results = await asyncio.gather(
        first.lookup.lookup(WORKSPACE, EXEC_ID),
        second.lookup.lookup(WORKSPACE, EXEC_ID),
        *(first.lookup.lookup(WORKSPACE, EXEC_ID) for _ in range(5)),
    )
    assert refold.count("get") == 1  # one call across both "processes" and seven lookups
    assert {r.execution.status for r in results} == {"ERRORED"}


async def test_a_dead_lease_holder_delays_the_others_at_most_its_lease(processes, refold: FakeRefold) -> None:
    first, _ = processes
    refold.add_execution(EXEC_ID, errored_doc(), linked_account_id="acme")
    # A process took the lease and died before publishing anything.
    assert await FetchLease(first.redis, first.flight).acquire()
    started = time.monotonic()
    result = await first.lookup.lookup(WORKSPACE, EXEC_ID)
    waited = time.monotonic() - started
    assert result.execution.status == "ERRORED"
    assert refold.count("get") == 1
    assert LEASE_SECONDS - 1 <= waited <= LEASE_SECONDS + 1.5


class LongLine:
    """A rate limiter whose first turn comes only after `seconds`: a long line of earlier requests."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.waiting = asyncio.Event()

    async def acquire(self, key: str, *, again: bool = False) -> float:
        seconds, self.seconds = self.seconds, 0.0
        self.waiting.set()
        await asyncio.sleep(seconds)
        return time.monotonic()


async def test_a_holder_waiting_in_a_long_line_keeps_its_lease_so_one_call_serves_all(
    processes, refold: FakeRefold
) -> None:
    """The lease outlives its 5 s while its holder waits its turn at the rate limit: the other process
    waits for the holder's result instead of calling Refold a second time."""
    first, second = processes
    refold.add_execution(EXEC_ID, errored_doc(), linked_account_id="acme")
    line = LongLine(LEASE_SECONDS + 2)
    patient = ExecutionLookup(
        first.lookup._resolver,
        RefoldClient(first.http, RetryPolicy(attempts=1), line),
        KnownAccounts(first.redis),
        first.redis,
        first.cache,
    )
    holder = asyncio.create_task(patient.lookup(WORKSPACE, EXEC_ID))
    await line.waiting.wait()  # the holder took the lease and waits for its turn
    assert await first.redis.exists(keys.fetch_lease(first.flight))
    follower = await second.lookup.lookup(WORKSPACE, EXEC_ID)
    assert (await holder).execution == follower.execution
    assert refold.count("get") == 1
    await patient.bookkeeping.drain(2)


async def test_a_holder_that_fails_releases_the_lease_for_the_next(processes, refold: FakeRefold) -> None:
    first, second = processes
    with pytest.raises(NotFound):
        await first.lookup.lookup(WORKSPACE, EXEC_ID)
    refold.add_execution(EXEC_ID, errored_doc(), linked_account_id="acme")
    started = time.monotonic()
    await second.lookup.lookup(WORKSPACE, EXEC_ID)
    assert time.monotonic() - started < 1  # no lease left behind to wait out
    assert refold.count("get") == 2


async def test_redis_down_still_answers_from_refold(refold: FakeRefold, credentials_key: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"redis://127.0.0.1:{sock.getsockname()[1]}/0"
    refold.api_keys.add(API_KEY)
    refold.add_execution(EXEC_ID, errored_doc(), linked_account_id="acme")
    process = Process(dead, refold, credentials_key)
    try:
        # A workspace's own credentials live in Redis: with Redis down they cannot be read, and the
        # lookup says so (the caller words it) without guessing at the fallback.
        with pytest.raises(StoreUnavailable):
            await process.lookup.lookup(WORKSPACE, EXEC_ID)
        assert refold.count("get") == 0
        # Credentials that need no Redis (the operator's fallback, no workspace scope): the cache and
        # the lease fail open, and the lookup goes straight to Refold.
        result = await process.lookup.lookup(Workspace(None), EXEC_ID)
        assert result.execution.status == "ERRORED"
    finally:
        await process.close()
    assert refold.count("get") == 1


async def test_an_invalid_id_costs_nothing(processes, refold: FakeRefold) -> None:
    first, _ = processes
    with pytest.raises(InvalidExecutionId):
        await first.lookup.lookup(WORKSPACE, "not-an-id")
    assert sum(refold.calls.values()) == 0


async def connect_team(process: Process, refold: FakeRefold, key: str) -> None:
    from datetime import UTC, datetime

    from bot.store.credentials import Scope, StoredCredentials

    record = StoredCredentials(
        kind=AuthKind.API_KEY,
        secret=SecretStr(API_KEY),
        linked_account_id="acme",
        connected_at=datetime.now(UTC),
    )
    await CredentialStore(process.redis, Cipher([key])).save(Scope.TEAM, "T1", record)


async def test_a_miss_under_the_default_account_tries_the_recent_ones(
    processes, refold: FakeRefold, credentials_key: str
) -> None:
    first, _ = processes
    await connect_team(first, refold, credentials_key)
    for account in ("n7", "n6", "n5", "n4", "n3", "n2", "n1"):  # n1 most recent
        await first.lookup._known.remember("team", "T1", account)  # type: ignore[attr-defined]
        await asyncio.sleep(0.002)
    refold.add_execution(EXEC_ID, errored_doc(), linked_account_id="n3")
    result = await first.lookup.lookup(WORKSPACE, EXEC_ID)
    assert (result.linked_account_id, result.searched_from) == ("n3", "acme")
    asked = [r["headers"].get("linked_account_id") for r in refold.requests if r["endpoint"] == "get"]
    assert asked[0] == "acme" and sorted(asked[1:]) == ["n1", "n2", "n3", "n4", "n5"]  # 1 + 5 calls


async def test_when_no_recent_account_has_it_the_answer_says_what_was_tried(
    processes, refold: FakeRefold, credentials_key: str
) -> None:
    from bot.render.errors import describe

    first, _ = processes
    await connect_team(first, refold, credentials_key)
    for account in ("a", "b", "c", "d", "e", "f", "acme"):
        await first.lookup._known.remember("team", "T1", account)  # type: ignore[attr-defined]
        await asyncio.sleep(0.002)
    with pytest.raises(NotFound) as missing:
        await first.lookup.lookup(WORKSPACE, EXEC_ID)
    assert missing.value.searched == ["f", "e", "d", "c", "b"]  # most recent first, the default left out
    assert refold.count("get") == 6
    words = describe(missing.value)
    assert "nor for the 5 this workspace used recently (f, e, d, c, b)" in words
    assert "`/execution <id> <linked_account_id>`" in words


async def test_a_named_account_is_not_second_guessed(
    processes, refold: FakeRefold, credentials_key: str
) -> None:
    first, _ = processes
    await connect_team(first, refold, credentials_key)
    await first.lookup._known.remember("team", "T1", "n1")  # type: ignore[attr-defined]
    refold.add_execution(EXEC_ID, errored_doc(), linked_account_id="n1")
    with pytest.raises(NotFound):
        await first.lookup.lookup(WORKSPACE, EXEC_ID, "someone-else")
    assert refold.count("get") == 1


class CountingLimiter(RefoldRateLimiter):
    """The real limiter, counting the turns asked for in its own round trips."""

    def __init__(self, redis: aioredis.Redis, **kwargs: Any) -> None:
        super().__init__(redis, **kwargs)
        self.asked = 0

    async def acquire(self, key: str, *, again: bool = False) -> float:
        self.asked += 1
        return await super().acquire(key, again=again)


def lookup_with_turns(process: Process, limiter: RefoldRateLimiter) -> ExecutionLookup:
    return ExecutionLookup(
        process.lookup._resolver,
        RefoldClient(process.http, RetryPolicy(attempts=1), limiter),
        KnownAccounts(process.redis),
        process.redis,
        process.cache,
        RecentLookups(process.redis),
        limiter,
    )


async def test_the_lease_holder_takes_its_rate_limit_turn_in_the_same_round_trip(
    processes, refold: FakeRefold
) -> None:
    first, _ = processes
    limiter = CountingLimiter(first.redis)
    lookup = lookup_with_turns(first, limiter)
    refold.add_execution(EXEC_ID, errored_doc(), linked_account_id="acme")
    await lookup.lookup(WORKSPACE, EXEC_ID)
    await lookup.bookkeeping.drain(2)
    assert refold.count("get") == 1
    assert limiter.asked == 0  # the client asked for no turn of its own
    fingerprint = first.lookup._resolver._fallback.fingerprint  # type: ignore[union-attr]
    assert await first.redis.hget(keys.rate_limit(fingerprint), "tat1")  # the budget was spent


async def test_a_spent_budget_sends_the_lease_holder_to_wait_in_line(processes, refold: FakeRefold) -> None:
    first, _ = processes
    limiter = CountingLimiter(first.redis, rates=[Rate(1, Duration.MINUTE, burst=1)], max_wait_seconds=1)
    lookup = lookup_with_turns(first, limiter)
    other = "0123456789abcdef01234567"
    refold.add_execution(EXEC_ID, errored_doc(), linked_account_id="acme")
    refold.add_execution(other, errored_doc(), linked_account_id="acme")
    await lookup.lookup(WORKSPACE, EXEC_ID)
    with pytest.raises(RefoldBusy):
        await lookup.lookup(WORKSPACE, other)
    await lookup.bookkeeping.drain(2)
    assert limiter.asked == 1  # the turn the script refused was asked for again, in line
    assert refold.count("get") == 1
    # The refused lookup gave its lease back: nobody waits it out.
    assert not await first.redis.exists(
        keys.fetch_lease(flight_key(first.flight.split(":")[0], "acme", other))
    )


async def test_a_fresh_lookup_costs_two_round_trips_before_its_refold_call_and_one_after(
    redis_url: str, refold: FakeRefold, credentials_key: str
) -> None:
    """The credentials, then the cache read with the lease and the turn; after the answer, the cache
    write, the lease's release and the recent lookup together (a person asked)."""
    sent: list[float] = []

    class Counted(aioredis.Connection):
        async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
            sent.append(time.monotonic())
            await super().send_packed_command(command, check_health)

    refold.api_keys.add(API_KEY)
    process = Process(redis_url, refold, credentials_key)
    await process.redis.aclose()
    process.redis = aioredis.Redis(
        connection_pool=aioredis.ConnectionPool.from_url(redis_url, connection_class=Counted)
    )
    process.cache = ExecutionCache(process.redis, Cipher([credentials_key]))
    process.lookup._resolver = CredentialResolver(  # type: ignore[attr-defined]
        CredentialStore(process.redis, Cipher([credentials_key])),
        refold.url,
        process.lookup._resolver._fallback,  # type: ignore[attr-defined]
        0,
    )
    lookup = lookup_with_turns(process, RefoldRateLimiter(process.redis))
    refold.add_execution(EXEC_ID, errored_doc(), linked_account_id="acme")
    warm = "0123456789abcdef01234567"
    refold.add_execution(warm, errored_doc(), linked_account_id="acme")
    try:
        # A first lookup makes the connection and loads the script (NOSCRIPT, SCRIPT LOAD): once only.
        await lookup.lookup(WORKSPACE, warm)
        await lookup.bookkeeping.drain(2)
        sent.clear()
        await lookup.lookup(WORKSPACE, EXEC_ID, user_id="U1")
        await lookup.bookkeeping.drain(2)
        asked_refold = refold.requests[-1]["at"]
        before = [at for at in sent if at < asked_refold]
        assert len(before) == 2
        assert len(sent) - len(before) == 1
        assert await process.redis.get(keys.execution_cache(process.flight))
        assert not await process.redis.exists(keys.fetch_lease(process.flight))
        assert await process.redis.llen(keys.recent_lookups(WORKSPACE.label)) == 1
    finally:
        await lookup.bookkeeping.drain(2)
        await process.close()
