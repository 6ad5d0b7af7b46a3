"""One health-checked Redis pool per process, and the translation of its failures."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot.redis_urls import BadRedisUrl, SentinelUrl, is_sentinel, parse_sentinel_url
from bot.settings import Settings
from bot.store.errors import StoreUnavailable

log = logging.getLogger(__name__)


def make_redis(settings: Settings, max_connections: int = 50) -> aioredis.Redis:
    """Build the pool from REDIS_URL: redis://, rediss:// (TLS) and unix:// sockets are supported."""
    url = settings.redis_url.get_secret_value()
    options: dict[str, object] = {
        "socket_timeout": settings.redis_timeout_seconds,
        "socket_connect_timeout": settings.redis_timeout_seconds,
        "health_check_interval": 15,
        "max_connections": max_connections,
        # Under a burst, wait for a free connection instead of failing (the plain pool raises at once).
        "timeout": max(5.0, settings.redis_timeout_seconds),
        # Servers drop idle connections (managed Redis does after minutes): reconnect and retry such a
        # command twice, quickly. A Redis that is really down still fails within the timeouts.
        "retry": Retry(ExponentialBackoff(cap=0.2, base=0.02), retries=2),
        "retry_on_error": [RedisConnectionError],
    }
    if url.startswith(("rediss://", "rediss+sentinel://")) and settings.redis_tls_insecure:
        options["ssl_cert_reqs"] = ssl.CERT_NONE
        options["ssl_check_hostname"] = False
    if is_sentinel(url):
        return _primary_of(parse_sentinel_url(url), options, settings.redis_timeout_seconds)
    return aioredis.Redis.from_pool(aioredis.BlockingConnectionPool.from_url(url, **options))


class _BlockingSentinelPool(SentinelConnectionPool, aioredis.BlockingConnectionPool):
    """Sentinel's pool (finds the primary, follows a failover) that waits for a free connection under
    a burst, like the single-server pool."""


def _primary_of(target: SentinelUrl, options: dict[str, object], timeout: float) -> aioredis.Redis:
    """A client of the primary Sentinel names now: every new connection asks the Sentinels, and a
    connection to a demoted primary (READONLY) is dropped and made again to the new one."""
    tls: dict[str, object] = {"ssl": True} if target.tls else {}
    tls_options = {k: v for k, v in options.items() if k.startswith("ssl_")}
    sentinel = Sentinel(
        target.sentinels,
        min_other_sentinels=0,
        sentinel_kwargs={"socket_timeout": timeout, "socket_connect_timeout": timeout, **tls, **tls_options},
    )
    master: aioredis.Redis = sentinel.master_for(
        target.service_name,
        redis_class=aioredis.Redis,
        connection_pool_class=_BlockingSentinelPool,
        db=target.db,
        username=target.username,
        password=target.password,
        **tls,
        **options,
    )
    return master


@contextlib.asynccontextmanager
async def redis_errors() -> AsyncIterator[None]:
    """Turn any Redis transport failure into StoreUnavailable (no URL, no password in the message)."""
    try:
        yield
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        # The message names the failure only: redis-py's text can carry the URL, and with it a password.
        reason = "no free connection" if "No connection available" in str(exc) else type(exc).__name__
        raise StoreUnavailable(f"Redis is unavailable ({reason})") from None


def decoded(value: bytes | str) -> str:
    """A value as Redis returned it (bytes, or str on a decoding client), as text."""
    return value.decode() if isinstance(value, bytes) else str(value)


def safe_url(url: str) -> str:
    """The Redis URL to show a person: scheme, host, port and database; never the password."""
    if is_sentinel(url):
        try:
            return parse_sentinel_url(url).shown()
        except BadRedisUrl:
            return "(unreadable REDIS_URL)"
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(unreadable REDIS_URL)"
    user = (
        f"{parts.username}:***@" if parts.password and parts.username else ("***@" if parts.password else "")
    )
    if parts.scheme == "unix":
        return f"unix://{user}{parts.path}"
    return f"{parts.scheme}://{user}{host}{port}{parts.path}"


def _cause(exc: BaseException) -> str:
    """Why Redis did not answer, in a few words (never the URL or password redis-py may quote)."""
    text = f"{exc} {exc.__context__ or ''}".lower()
    if isinstance(exc.__context__, ConnectionRefusedError) or "error 111 " in text:
        return "connection refused: is redis-server running there?"
    for needle, words in (
        ("connection refused", "connection refused: is redis-server running there?"),
        ("name or service not known", "unknown host"),
        ("temporary failure in name resolution", "unknown host"),
        ("invalid password", "wrong password"),
        ("invalid username-password", "wrong user name or password"),
        ("authentication required", "a password is required"),
        ("no route to host", "no route to host"),
    ):
        if needle in text:
            return words
    if isinstance(exc, RedisTimeoutError | TimeoutError):
        return "timed out"
    return type(exc).__name__


async def ping_problem(client: aioredis.Redis) -> str | None:
    """None when Redis answers PING; otherwise why not."""
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        return _cause(exc)
    return None


async def ping(client: aioredis.Redis) -> bool:
    return await ping_problem(client) is None


@dataclass(frozen=True)
class ServerFacts:
    """What `python -m bot check` says of the Redis it reaches."""

    role: str  # master or slave, as INFO says
    replicas: int
    persistence: str | None  # "AOF", "RDB", "AOF and RDB", "off", or None when CONFIG is refused
    eviction: str | None = None  # maxmemory-policy, or None when CONFIG is refused


def eviction_problem(policy: str) -> str:
    """What an evicting maxmemory-policy would cost, and the fix; for `check` and the start-up log."""
    return (
        f"maxmemory-policy is {policy}: when Redis fills up it deletes keys, and with them connected "
        "workspaces' Refold credentials, Slack installations and alert routes; run "
        "`CONFIG SET maxmemory-policy noeviction` and set `maxmemory-policy noeviction` in redis.conf "
        "(or the provider's parameter group)"
    )


async def server_facts(client: aioredis.Redis) -> ServerFacts:
    info = await client.info("replication")
    try:
        appendonly = str((await client.config_get("appendonly")).get("appendonly") or "no")
        save = str((await client.config_get("save")).get("save") or "")
        policy = str((await client.config_get("maxmemory-policy")).get("maxmemory-policy") or "")
    except ResponseError:
        # Managed Redis often disables CONFIG: persistence and eviction are then theirs to tell.
        persistence, eviction = None, None
    else:
        kinds = [name for name, on in (("AOF", appendonly == "yes"), ("RDB", bool(save.strip()))) if on]
        persistence = " and ".join(kinds) if kinds else "off"
        eviction = policy or None
    return ServerFacts(
        str(info.get("role", "unknown")), int(info.get("connected_slaves", 0)), persistence, eviction
    )


def quiet_unrecorded_jobs(loop: asyncio.AbstractEventLoop) -> None:
    """saq records a job's outcome in a task nobody awaits; when Redis is away that task fails, and
    asyncio would print its whole traceback. One line says it instead: the job stays marked active,
    and saq's sweep runs it again once Redis is back (answers already given are not repeated)."""
    previous = loop.get_exception_handler()

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc, task = context.get("exception"), context.get("future")
        # saq names the task that runs and records a job "process".
        is_job = isinstance(task, asyncio.Task) and task.get_name() == "process"
        if is_job and isinstance(exc, RedisConnectionError | RedisTimeoutError | StoreUnavailable | OSError):
            log.warning(
                "a job's outcome could not be recorded (%s: Redis unavailable); it runs again once "
                "Redis is back",
                type(exc).__name__,
            )
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)
