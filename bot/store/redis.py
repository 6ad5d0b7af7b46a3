"""One health-checked Redis pool per process, and the translation of its failures."""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot.settings import Settings
from bot.store.errors import StoreUnavailable

NAMESPACE = "refold-bot"


def make_redis(settings: Settings) -> aioredis.Redis:
    """Build the pool from REDIS_URL: redis://, rediss:// (TLS) and unix:// sockets are supported."""
    url = settings.redis_url.get_secret_value()
    options: dict[str, object] = {
        "socket_timeout": settings.redis_timeout_seconds,
        "socket_connect_timeout": settings.redis_timeout_seconds,
        "health_check_interval": 15,
        "max_connections": 50,
        # A failed command is not retried here: the caller reports the outage at once.
        "retry_on_timeout": False,
    }
    if url.startswith("rediss://") and settings.redis_tls_insecure:
        options["ssl_cert_reqs"] = ssl.CERT_NONE
        options["ssl_check_hostname"] = False
    return aioredis.from_url(url, **options)


@contextlib.asynccontextmanager
async def redis_errors() -> AsyncIterator[None]:
    """Turn any Redis transport failure into StoreUnavailable (no URL, no password in the message)."""
    try:
        yield
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        raise StoreUnavailable(f"Redis is unavailable ({type(exc).__name__})") from None


async def ping(client: aioredis.Redis) -> bool:
    try:
        async with redis_errors():
            return bool(await client.ping())
    except StoreUnavailable:
        return False
