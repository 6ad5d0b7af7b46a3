"""Where a workspace may point the bot: https, on the allowlist, nothing clever."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from bot.refold.errors import DisallowedBaseUrl


def check_workspace_base_url(raw: str, allowed_hosts: list[str]) -> str:
    """Return the normalized `https://host` or raise DisallowedBaseUrl. No request is made."""
    url = raw.strip()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise DisallowedBaseUrl("that base URL could not be read") from None
    if parts.scheme.lower() != "https":
        raise DisallowedBaseUrl("the base URL must start with https://")
    if "@" in parts.netloc or parts.username or parts.password:
        raise DisallowedBaseUrl("the base URL must not contain a user name or password")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise DisallowedBaseUrl("the base URL has no host")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        raise DisallowedBaseUrl("the base URL must be a Refold host name, not an IP address")
    if port not in (None, 443):
        raise DisallowedBaseUrl("the base URL must use the standard https port")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise DisallowedBaseUrl("the base URL must be just the host, like https://app.refold.ai")
    if host not in {h.lower() for h in allowed_hosts}:
        allowed = ", ".join(allowed_hosts)
        raise DisallowedBaseUrl(f"{host} is not an allowed Refold host (allowed: {allowed})")
    return f"https://{host}"
