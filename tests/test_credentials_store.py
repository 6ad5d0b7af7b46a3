"""The encrypted per-workspace credential store, on a real redis-server."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as aioredis
from cryptography.fernet import Fernet
from pydantic import SecretStr

from bot.refold.credentials import AuthKind, RefoldCredentials, mask_secret
from bot.render.errors import Surface, describe
from bot.settings import Settings
from bot.store.credentials import CredentialStore, Scope, StoredCredentials, credentials_key
from bot.store.credentials import credentials_key as credentials_key_of
from bot.store.crypto import Cipher, InvalidToken
from bot.store.errors import CorruptCredentials, NotConnected, SessionExpired, StoreUnavailable
from bot.store.known_accounts import KnownAccounts
from bot.store.redis import make_redis
from bot.usecases.workspace import CredentialResolver, Workspace


def record(secret: str = "tk_secret_value_1234", account: str = "acme") -> StoredCredentials:
    return StoredCredentials(
        kind=AuthKind.API_KEY,
        secret=SecretStr(secret),
        linked_account_id=account,
        connected_by="U1",
        connected_at=datetime.now(UTC),
    )


@pytest.fixture
async def redis_client(redis_url: str):
    client = aioredis.from_url(redis_url)
    yield client
    await client.aclose()


async def test_round_trip(redis_client, credentials_key: str) -> None:
    store = CredentialStore(redis_client, Cipher([credentials_key]))
    await store.save(Scope.TEAM, "T1", record())
    loaded = await store.load(Scope.TEAM, "T1")
    assert loaded is not None
    assert loaded.secret.get_secret_value() == "tk_secret_value_1234"
    assert loaded.linked_account_id == "acme" and loaded.connected_by == "U1"
    assert await store.load(Scope.TEAM, "T2") is None
    assert await store.load(Scope.ENTERPRISE, "T1") is None
    assert await store.delete(Scope.TEAM, "T1") is True
    assert await store.load(Scope.TEAM, "T1") is None


async def test_nothing_secret_is_readable_in_redis(redis_client, credentials_key: str) -> None:
    store = CredentialStore(redis_client, Cipher([credentials_key]))
    known = KnownAccounts(redis_client)
    secret = "tk_very_secret_api_key_9f2c"
    await store.save(Scope.TEAM, "T1", record(secret))
    await store.save(Scope.ENTERPRISE, "E1", record(secret + "_org"))
    await known.remember("team", "T1", "acme")
    keys = await redis_client.keys("*")
    assert keys, "the store wrote nothing"
    assert all(k.startswith(b"refold-bot:") for k in keys)
    for key in keys:
        dumped = await redis_client.dump(key)
        assert secret.encode() not in dumped
        assert b"9f2c" not in dumped
        if (await redis_client.type(key)) == b"string":
            assert secret.encode() not in await redis_client.get(key)


async def test_rotation_old_key_still_decrypts_and_rotate_moves_everything(
    redis_url: str, redis_client
) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    old_store = CredentialStore(redis_client, Cipher([old]))
    for i in range(5):
        await old_store.save(Scope.TEAM, f"T{i}", record(f"tk_secret_{i}_abcdef"))
    rotated_store = CredentialStore(redis_client, Cipher([new, old]))
    assert (await rotated_store.load(Scope.TEAM, "T3")).secret.get_secret_value() == "tk_secret_3_abcdef"
    assert await rotated_store.rotate_all() == (5, 0)
    new_only = CredentialStore(redis_client, Cipher([new]))
    for i in range(5):
        assert (await new_only.load(Scope.TEAM, f"T{i}")).secret.get_secret_value() == f"tk_secret_{i}_abcdef"
    with pytest.raises(CorruptCredentials):
        await CredentialStore(redis_client, Cipher([old])).load(Scope.TEAM, "T0")


async def test_records_are_compressed_before_encryption_and_ones_written_uncompressed_still_read(
    redis_client, credentials_key: str
) -> None:
    cipher = Cipher([credentials_key])
    plain = record().model_dump_json().encode()
    assert len(plain) >= 128
    token = cipher.encrypt(plain)
    assert cipher.decrypt(token) == plain
    assert len(token) < len(Fernet(credentials_key.encode()).encrypt(plain))
    # Kept as a newer key rotates it in: still readable, still the same record.
    newer = Fernet.generate_key().decode()
    assert Cipher([newer, credentials_key]).decrypt(Cipher([newer, credentials_key]).rotate(token)) == plain
    # Written by a version that did not compress: read as it is, whether short or long.
    for old_plain in (b'{"a": 1}', plain):
        assert cipher.decrypt(Fernet(credentials_key.encode()).encrypt(old_plain)) == old_plain
    store = CredentialStore(redis_client, cipher)
    await redis_client.set(
        credentials_key_of(Scope.TEAM, "T9"), Fernet(credentials_key.encode()).encrypt(plain)
    )
    loaded = await store.load(Scope.TEAM, "T9")
    assert loaded is not None and loaded.linked_account_id == "acme"
    # The compression marker on something that does not inflate: unreadable, as a corrupt token is.
    with pytest.raises(InvalidToken):
        cipher.decrypt(Fernet(credentials_key.encode()).encrypt(b"\x00d1 not deflate"))


def test_rotate_keys_cli(redis_url: str) -> None:
    import redis as sync_redis

    from tests.conftest import run_cli

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()

    async def seed() -> None:
        client = aioredis.from_url(redis_url)
        await CredentialStore(client, Cipher([old])).save(Scope.TEAM, "T1", record())
        await client.aclose()

    asyncio.run(seed())
    result = run_cli("rotate-keys", env={"REDIS_URL": redis_url, "CREDENTIALS_KEY": f"{new},{old}"})
    assert result.returncode == 0, result.stderr
    assert "re-encrypted 1 records" in result.stdout
    token = sync_redis.Redis.from_url(redis_url).get(credentials_key(Scope.TEAM, "T1"))
    Fernet(new.encode()).decrypt(token)


async def test_twenty_workspaces_concurrently_never_cross(redis_client, credentials_key: str) -> None:
    store = CredentialStore(redis_client, Cipher([credentials_key]))

    async def write_then_read(i: int) -> tuple[int, str]:
        await store.save(Scope.TEAM, f"T{i:02}", record(f"tk_workspace_{i:02}_secret", f"acct{i}"))
        await asyncio.sleep(0)
        loaded = await store.load(Scope.TEAM, f"T{i:02}")
        return i, loaded.secret.get_secret_value() + "|" + loaded.linked_account_id

    for _ in range(3):
        results = await asyncio.gather(*(write_then_read(i) for i in range(20)))
        for i, seen in results:
            assert seen == f"tk_workspace_{i:02}_secret|acct{i}"


async def test_corrupt_record_asks_to_reconnect(redis_client, credentials_key: str) -> None:
    store = CredentialStore(redis_client, Cipher([credentials_key]))
    await redis_client.set(credentials_key_for("T1"), b"garbage-not-fernet")
    with pytest.raises(CorruptCredentials) as corrupt:
        await store.load(Scope.TEAM, "T1")
    # The store states the fact; the words say how to fix it, in Slack and in a terminal.
    assert "`/execution connect`" in describe(corrupt.value)
    assert "python -m bot connect" in describe(corrupt.value, Surface.TERMINAL)
    assert "/execution" not in str(corrupt.value)
    other = Cipher([Fernet.generate_key().decode()])
    await redis_client.set(credentials_key_for("T2"), other.encrypt(b'{"kind": "api_key"}'))
    with pytest.raises(CorruptCredentials):
        await store.load(Scope.TEAM, "T2")
    await redis_client.set(
        credentials_key_for("T3"), Cipher([credentials_key]).encrypt(b'{"not": "a record"}')
    )
    with pytest.raises(CorruptCredentials):
        await store.load(Scope.TEAM, "T3")


def credentials_key_for(team: str) -> str:
    return credentials_key(Scope.TEAM, team)


async def test_resolution_order(redis_client, credentials_key: str) -> None:
    store = CredentialStore(redis_client, Cipher([credentials_key]))
    fallback = RefoldCredentials(
        "https://app.refold.ai", AuthKind.API_KEY, SecretStr("tk_fallback_key"), "env"
    )
    resolver = CredentialResolver(store, "https://app.refold.ai", fallback, cache_seconds=0)
    assert (await resolver.resolve(Workspace("T1"))).scope is None  # env fallback
    await store.save(Scope.ENTERPRISE, "E1", record("tk_org_key_123", "org-acct"))
    org = await resolver.resolve(Workspace("T1", "E1"))
    assert (org.scope, org.credentials.linked_account_id) == (Scope.ENTERPRISE, "org-acct")
    await store.save(Scope.TEAM, "T1", record("tk_team_key_123", "team-acct"))
    team = await resolver.resolve(Workspace("T1", "E1"))
    assert (team.scope, team.credentials.linked_account_id) == (Scope.TEAM, "team-acct")
    assert team.credentials.effective_linked_account("override") == "override"
    with pytest.raises(NotConnected) as not_connected:
        await CredentialResolver(store, "https://app.refold.ai").resolve(Workspace("T9"))
    assert "`/execution connect`" in describe(not_connected.value)
    assert "REFOLD_API_KEY" in describe(not_connected.value, Surface.TERMINAL)


async def test_expired_session_token_asks_to_reconnect(redis_client, credentials_key: str) -> None:
    store = CredentialStore(redis_client, Cipher([credentials_key]))
    expired = StoredCredentials(
        kind=AuthKind.SESSION_TOKEN,
        secret=SecretStr("st_x_123456"),
        session_expires_at=datetime.now(UTC) - timedelta(minutes=1),
        connected_at=datetime.now(UTC),
    )
    await store.save(Scope.TEAM, "T1", expired)
    with pytest.raises(SessionExpired) as expired_error:
        await CredentialResolver(store, "https://app.refold.ai").resolve(Workspace("T1"))
    assert "expired" in describe(expired_error.value) and "`/execution connect`" in describe(
        expired_error.value
    )


async def test_known_accounts_are_bounded_and_most_recent_first(redis_client) -> None:
    known = KnownAccounts(redis_client, limit=3)
    for account in ["a", "b", "c", "d", "b"]:
        await known.remember("team", "T1", account)
        await asyncio.sleep(0.002)
    assert await known.recent("team", "T1") == ["b", "d", "c"]
    assert await known.recent("team", "T2") == []


def test_mask_secret() -> None:
    assert mask_secret("tk_1234567890abcdef9f2c") == "tk…9f2c"
    assert "12345" not in mask_secret("tk_12345")


async def test_redis_down_gives_a_clear_error_within_the_timeout(
    outage_redis_server, credentials_key: str
) -> None:
    settings = Settings(
        redis_url=SecretStr(f"redis://{outage_redis_server.host}:{outage_redis_server.port}/0"),
        redis_timeout_seconds=0.5,
        _env_file=None,
    )
    client = make_redis(settings)
    store = CredentialStore(client, Cipher([credentials_key]))
    await store.save(Scope.TEAM, "T1", record())
    outage_redis_server.stop()
    try:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable) as caught:
            await store.load(Scope.TEAM, "T1")
        elapsed = time.monotonic() - started
        assert elapsed < 0.5 * 2 + 0.5, elapsed  # connect timeout, plus scheduling slack
        assert str(outage_redis_server.port) not in str(caught.value)
    finally:
        outage_redis_server.start()
    await client.aclose()


def test_rediss_insecure_setting_disables_verification_only_when_asked() -> None:
    import ssl

    secure = make_redis(Settings(redis_url=SecretStr("rediss://h:1/0"), _env_file=None))
    insecure = make_redis(
        Settings(redis_url=SecretStr("rediss://h:1/0"), redis_tls_insecure=True, _env_file=None)
    )
    assert secure.connection_pool.connection_kwargs.get("ssl_cert_reqs", "required") in (
        "required",
        ssl.CERT_REQUIRED,
    )
    assert insecure.connection_pool.connection_kwargs["ssl_cert_reqs"] == ssl.CERT_NONE
    unix = make_redis(Settings(redis_url=SecretStr("unix:///tmp/redis.sock"), _env_file=None))
    assert unix.connection_pool.connection_kwargs["path"] == "/tmp/redis.sock"


async def test_connections_dropped_by_the_server_are_replaced(redis_url: str, credentials_key: str) -> None:
    settings = Settings(redis_url=SecretStr(redis_url), _env_file=None)
    client = make_redis(settings)
    store = CredentialStore(client, Cipher([credentials_key]))
    await store.save(Scope.TEAM, "T1", record())
    killer = aioredis.from_url(redis_url)
    killed = await killer.client_kill_filter(_type="normal", skipme=True)
    assert killed >= 1  # the store's pooled connection is gone server-side
    loaded = await store.load(Scope.TEAM, "T1")
    assert loaded is not None and loaded.linked_account_id == "acme"
    await killer.aclose()
    await client.aclose()


async def test_resolved_credentials_are_cached_briefly_and_invalidated(
    redis_client, credentials_key: str
) -> None:
    store = CredentialStore(redis_client, Cipher([credentials_key]))
    resolver = CredentialResolver(store, "https://app.refold.ai", cache_seconds=0.3)
    await store.save(Scope.TEAM, "T1", record("tk_first_key_1", "first"))
    assert (await resolver.resolve(Workspace("T1"))).credentials.linked_account_id == "first"
    await store.save(Scope.TEAM, "T1", record("tk_second_key_2", "second"))
    assert (await resolver.resolve(Workspace("T1"))).credentials.linked_account_id == "first"  # cached
    resolver.invalidate(Scope.TEAM, "T1")
    assert (await resolver.resolve(Workspace("T1"))).credentials.linked_account_id == "second"
    await store.delete(Scope.TEAM, "T1")
    await asyncio.sleep(0.35)
    with pytest.raises(NotConnected):
        await resolver.resolve(Workspace("T1"))  # expired from the cache
