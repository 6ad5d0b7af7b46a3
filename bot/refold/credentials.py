"""What the client needs to authenticate one call: an API key with a linked account, or a session token."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum

from pydantic import SecretStr


class AuthKind(StrEnum):
    API_KEY = "api_key"
    SESSION_TOKEN = "session_token"  # noqa: S105 - an enum label, not a secret


@dataclass(frozen=True)
class RefoldCredentials:
    base_url: str
    kind: AuthKind
    secret: SecretStr = field(repr=False)
    linked_account_id: str | None = None

    def headers(self, linked_account_id: str | None = None) -> dict[str, str]:
        if self.kind is AuthKind.SESSION_TOKEN:
            # A session token is already bound to one linked account; Refold ignores the header.
            return {"Authorization": f"Bearer {self.secret.get_secret_value()}"}
        headers = {"x-api-key": self.secret.get_secret_value()}
        account = linked_account_id or self.linked_account_id
        if account:
            headers["linked_account_id"] = account
        return headers

    @property
    def fingerprint(self) -> str:
        """A stable, non-reversible identity for cache and rate-limit keys; never the secret itself."""
        digest = hashlib.sha256()
        for part in (self.base_url, self.kind.value, self.secret.get_secret_value()):
            digest.update(part.encode())
            digest.update(b"\0")
        return digest.hexdigest()[:32]

    def effective_linked_account(self, override: str | None = None) -> str | None:
        if self.kind is AuthKind.SESSION_TOKEN:
            return self.linked_account_id
        return override or self.linked_account_id


def mask_secret(secret: str) -> str:
    """`tk…9f2c`: enough to recognise a key, never enough to use it."""
    if len(secret) <= 8:
        return "…" + secret[-2:] if len(secret) > 4 else "…"
    return f"{secret[:2]}…{secret[-4:]}"
