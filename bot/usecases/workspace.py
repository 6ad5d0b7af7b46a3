"""Which Slack workspace a request comes from, and where its Refold credentials come from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from cachetools import TTLCache

from bot.refold.credentials import RefoldCredentials
from bot.store.credentials import CredentialStore, Scope, StoredCredentials
from bot.store.errors import NotConnected, SessionExpired

_MISSING: Final = object()


@dataclass(frozen=True)
class Workspace:
    team_id: str | None
    enterprise_id: str | None = None

    def scopes(self) -> list[tuple[Scope, str]]:
        """Most specific first: a workspace's own connection overrides its org's."""
        found: list[tuple[Scope, str]] = []
        if self.team_id:
            found.append((Scope.TEAM, self.team_id))
        if self.enterprise_id:
            found.append((Scope.ENTERPRISE, self.enterprise_id))
        return found

    @property
    def own_scope(self) -> tuple[Scope, str] | None:
        """Where a connect, disconnect or uninstall from here writes: the most specific scope."""
        scopes = self.scopes()
        return scopes[0] if scopes else None

    @property
    def label(self) -> str:
        return self.team_id or self.enterprise_id or "-"


@dataclass(frozen=True)
class ResolvedCredentials:
    credentials: RefoldCredentials
    scope: Scope | None  # None: the operator's env fallback
    scope_id: str | None
    record: StoredCredentials | None


class CredentialResolver:
    """Stored workspace credentials, then the org's, then the env fallback, else NotConnected.

    Decrypted records are kept in process for a few seconds, so a burst of clicks decrypts once.
    Connect and disconnect in this process invalidate at once; other processes see them within the TTL.
    """

    def __init__(
        self,
        store: CredentialStore,
        default_base_url: str,
        fallback: RefoldCredentials | None = None,
        cache_seconds: float = 5.0,
    ) -> None:
        self._store = store
        self._default_base_url = default_base_url
        self._fallback = fallback
        # A connect or disconnect in another process shows here within cache_seconds.
        self._cache: TTLCache[tuple[Scope, str], StoredCredentials | None] = TTLCache(
            maxsize=10_000, ttl=cache_seconds
        )

    def invalidate(self, scope: Scope, scope_id: str) -> None:
        self._cache.pop((scope, scope_id), None)

    async def _load(self, scope: Scope, scope_id: str) -> StoredCredentials | None:
        hit = self._cache.get((scope, scope_id), _MISSING)
        if hit is not _MISSING:
            return hit  # type: ignore[return-value]
        record = await self._store.load(scope, scope_id)
        self._cache[(scope, scope_id)] = record
        return record

    async def resolve(self, workspace: Workspace) -> ResolvedCredentials:
        for scope, scope_id in workspace.scopes():
            record = await self._load(scope, scope_id)
            if record is None:
                continue
            if record.expired:
                raise SessionExpired(f"the session token of {scope.value} {scope_id} has expired")
            return ResolvedCredentials(record.to_refold(self._default_base_url), scope, scope_id, record)
        if self._fallback is not None:
            return ResolvedCredentials(self._fallback, None, None, None)
        raise NotConnected(f"no Refold credentials for {workspace.label}")
