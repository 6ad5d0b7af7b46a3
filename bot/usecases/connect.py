"""The connect/disconnect use case, shared by the CLI and the Slack modal."""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pydantic import SecretStr

from bot.errors import BotError, ErrorKind
from bot.refold.client import RefoldClient
from bot.refold.credentials import AuthKind, RefoldCredentials
from bot.refold.ids import normalize_linked_account
from bot.refold.urls import check_workspace_base_url
from bot.settings import Settings
from bot.store.audit import AuditEntry, AuditLog
from bot.store.credentials import CredentialStore, Scope, StoredCredentials
from bot.store.errors import StoreUnavailable
from bot.store.known_accounts import KnownAccounts
from bot.usecases.workspace import CredentialResolver

log = logging.getLogger(__name__)


class InvalidSecret(BotError, ValueError):
    kind = ErrorKind.INVALID_SECRET


@dataclass(frozen=True)
class ConnectRequest:
    scope: Scope
    scope_id: str
    kind: AuthKind
    secret: SecretStr
    linked_account_id: str | None
    base_url: str | None = None
    connected_by: str | None = None
    operator_users: list[str] = field(default_factory=list)
    operator_groups: list[str] = field(default_factory=list)


def session_token_expiry(token: str) -> datetime | None:
    """Read `exp` from a JWT session token without verifying it: only to warn before it lapses."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        padded = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(padded))
        return datetime.fromtimestamp(int(claims["exp"]), UTC)
    except (ValueError, KeyError, TypeError, OverflowError):
        return None


class ConnectService:
    def __init__(
        self,
        settings: Settings,
        store: CredentialStore,
        known: KnownAccounts,
        client: RefoldClient,
        resolver: CredentialResolver,
        audit: AuditLog,
    ) -> None:
        self._audit = audit
        self._settings = settings
        self._store = store
        self._known = known
        self._client = client
        self._resolver = resolver

    def prepare(self, request: ConnectRequest) -> StoredCredentials:
        """Validate everything that needs no network; raise ValueError subclasses with a user-facing text."""
        secret = request.secret.get_secret_value().strip()
        if not secret:
            raise InvalidSecret("the key is empty")
        if len(secret) > 4096 or any(ch.isspace() for ch in secret):
            raise InvalidSecret("that doesn't look like a Refold key or session token")
        account = normalize_linked_account(request.linked_account_id) if request.linked_account_id else None
        if request.kind is AuthKind.API_KEY and not account:
            raise InvalidSecret("an API key needs a default linked account")
        base_url = None
        if request.base_url and request.base_url.strip():
            base_url = check_workspace_base_url(request.base_url, self._settings.refold_allowed_hosts)
        expires = session_token_expiry(secret) if request.kind is AuthKind.SESSION_TOKEN else None
        return StoredCredentials(
            kind=request.kind,
            secret=SecretStr(secret),
            linked_account_id=account,
            base_url=base_url,
            session_expires_at=expires,
            connected_by=request.connected_by,
            connected_at=datetime.now(UTC),
            operator_users=list(request.operator_users),
            operator_groups=list(request.operator_groups),
        )

    async def verify(self, record: StoredCredentials) -> None:
        """A cheap list call (limit 1); raises the client's typed errors when Refold says no."""
        creds: RefoldCredentials = record.to_refold(self._settings.refold_api_url)
        await self._client.list_executions(creds, limit=1)

    async def save(self, request: ConnectRequest, record: StoredCredentials) -> None:
        await self._store.save(request.scope, request.scope_id, record)
        self._resolver.invalidate(request.scope, request.scope_id)
        await self._record(request.scope_id, request.connected_by, "connect")
        log.info(
            "refold credentials connected for %s %s by %s",
            request.scope.value,
            request.scope_id,
            request.connected_by or "cli",
        )

    async def disconnect(
        self, scope: Scope, scope_id: str, who: str | None = None, *, uninstalled: bool = False
    ) -> bool:
        """`uninstalled`: the app left the workspace, so its history (the audit log) goes too."""
        removed = await self._store.delete(scope, scope_id)
        self._resolver.invalidate(scope, scope_id)
        await self._known.forget_all(scope.value, scope_id)
        if uninstalled:
            await self._audit.forget(scope_id)
        else:
            await self._record(scope_id, who, "disconnect" if removed else "disconnect (nothing stored)")
        log.info("refold credentials removed for %s %s (existed: %s)", scope.value, scope_id, removed)
        return removed

    async def _record(self, scope_id: str, who: str | None, action: str) -> None:
        entry = AuditEntry(
            at=datetime.now(UTC), who=who or "cli", action=action, execution_id="", result="ok"
        )
        try:
            await self._audit.append(scope_id, entry)
        except StoreUnavailable:
            log.warning("audit entry for a %s not written: Redis unavailable", action)
