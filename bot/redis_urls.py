"""REDIS_URL's forms, read in one place: a single server, or a primary managed by Sentinel.

`redis+sentinel://[user:password@]host:port[,host:port…]/<service_name>[/<db>]` (`rediss+sentinel://`
for TLS). The user and password are the primary's and replicas'; the Sentinels are asked without them,
as Sentinels are usually deployed.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
DEFAULT_SENTINEL_PORT = 26379


class BadRedisUrl(ValueError):
    """Why REDIS_URL cannot be used; the message never quotes the URL (it may hold a password)."""


@dataclass(frozen=True)
class SentinelUrl:
    sentinels: list[tuple[str, int]]
    service_name: str
    db: int
    username: str | None
    password: str | None
    tls: bool

    def shown(self) -> str:
        """What a person may see: no password."""
        scheme = "rediss+sentinel" if self.tls else "redis+sentinel"
        auth = "***@" if self.password else ""
        hosts = ",".join(f"{host}:{port}" for host, port in self.sentinels)
        return f"{scheme}://{auth}{hosts}/{self.service_name}/{self.db}"


def is_sentinel(url: str) -> bool:
    return url.split("://", 1)[0].lower() in SENTINEL_SCHEMES


def parse_sentinel_url(url: str) -> SentinelUrl:
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in SENTINEL_SCHEMES:
        raise BadRedisUrl("a Sentinel URL starts with redis+sentinel:// or rediss+sentinel://")
    netloc, _, path = rest.partition("/")
    userinfo, at, hosts = netloc.rpartition("@")
    if not at:
        hosts, userinfo = netloc, ""
    username, colon, password = userinfo.partition(":")
    if not colon:
        # `password@host`: one word before the @ is a password, as in redis:// URLs.
        username, password = "", userinfo
    sentinels: list[tuple[str, int]] = []
    for entry in hosts.split(","):
        host, _, port = entry.strip().rpartition(":") if ":" in entry else (entry.strip(), "", "")
        if not host:
            raise BadRedisUrl("each Sentinel is host:port, separated by commas")
        if port and not port.isdigit():
            raise BadRedisUrl(f"the Sentinel port after {host} is not a number")
        sentinels.append((host, int(port) if port else DEFAULT_SENTINEL_PORT))
    parts = [p for p in path.split("/") if p]
    if not parts:
        raise BadRedisUrl("the primary's service name is missing: …/<service_name>[/<db>]")
    if len(parts) > 2 or (len(parts) == 2 and not parts[1].isdigit()):
        raise BadRedisUrl("after the Sentinels comes /<service_name>, then optionally /<db> (a number)")
    return SentinelUrl(
        sentinels=sentinels,
        service_name=unquote(parts[0]),
        db=int(parts[1]) if len(parts) == 2 else 0,
        username=unquote(username) or None,
        password=unquote(password) or None,
        tls=scheme.lower() == "rediss+sentinel",
    )


EMBEDDED = "embedded"


def is_embedded(url: str) -> bool:
    """`embedded` or `embedded:///path/to/dir`: a redis-server the bot runs itself, on one machine."""
    return url == EMBEDDED or url.lower().startswith(f"{EMBEDDED}://")


def embedded_path(url: str) -> str | None:
    """The directory an `embedded:///path` URL names, or None for plain `embedded` (DATA_DIR then)."""
    if url == EMBEDDED:
        return None
    rest = url.split("://", 1)[1]
    if not rest.startswith("/"):
        raise BadRedisUrl(
            "embedded:///path/to/dir takes an absolute path (three slashes), or say just embedded"
        )
    return unquote(rest) if rest.strip("/") else None
