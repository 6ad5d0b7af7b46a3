"""Runtime configuration, read from the environment and an optional `.env`.

Names are a contract with deployment tooling (see DESIGN.md); keep them.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated

from cryptography.fernet import Fernet
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.redis_urls import BadRedisUrl, embedded_path, is_embedded, is_sentinel, parse_sentinel_url


class SettingsError(Exception):
    """Missing or contradictory settings: one line per problem, each naming its variable."""

    def __init__(self, variable: str, problem: str, *more: tuple[str, str]) -> None:
        self.problems: list[tuple[str, str]] = [(variable, problem), *more]
        self.variable = variable
        super().__init__("\n".join(f"{name}: {text}" for name, text in self.problems))

    @property
    def variables(self) -> list[str]:
        return [name for name, _ in self.problems]

    @property
    def lines(self) -> list[str]:
        return [f"{name}: {text}" for name, text in self.problems]

    @classmethod
    def of(cls, problems: list[tuple[str, str]]) -> SettingsError:
        return cls(problems[0][0], problems[0][1], *problems[1:])


class SlackMode(StrEnum):
    SINGLE_WORKSPACE = "single-workspace"
    OAUTH = "oauth"


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", env_ignore_empty=True
    )

    slack_signing_secret: SecretStr | None = None
    slack_bot_token: SecretStr | None = None
    slack_client_id: str | None = None
    slack_client_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"

    # Unset, the bot uses redis://localhost:6379/0 when something answers there, else an embedded Redis
    # (bot.store.embedded); whether it was set is read from model_fields_set.
    redis_url: SecretStr = SecretStr("redis://localhost:6379/0")
    # The embedded Redis's data (and its socket) when REDIS_URL is `embedded` or unset.
    data_dir: Path = Path(".bot-data")
    # Heroku-style managed Redis presents self-signed certificates; verification stays on unless asked.
    redis_tls_insecure: bool = False
    redis_timeout_seconds: float = Field(default=2.0, gt=0, le=30)

    credentials_key: SecretStr | None = None

    refold_api_url: str = "https://app.refold.ai"
    refold_allowed_hosts: Annotated[list[str], NoDecode] = ["app.refold.ai", "api.gocobalt.io"]
    refold_api_key: SecretStr | None = None
    refold_linked_account_id: str | None = None
    refold_timeout_seconds: float = Field(default=8.0, gt=0, le=60)
    # "Open in Refold" on every card: Refold documents no execution page, so there is no default.
    refold_dashboard_url: str | None = None
    # Links on these domains that name an execution are unfurled into a compact card.
    refold_unfurl_domains: Annotated[list[str], NoDecode] = ["app.refold.ai", "app.gocobalt.io"]
    # The bot's public base URL: alert routes' webhook URLs are built on it and registered in Refold.
    public_url: str | None = None

    terminal_cache_seconds: int = Field(default=600, ge=0, le=86_400)
    # Following: how long a run is polled before the bot gives up, and the first (fastest) interval.
    follow_max_seconds: int = Field(default=7200, ge=1, le=7 * 86_400)
    follow_poll_seconds: float = Field(default=5.0, ge=1, le=60)
    credentials_cache_seconds: float = Field(default=5.0, ge=0, le=300)

    port: int = Field(default=3000, ge=1, le=65_535)
    # Prometheus: web processes serve /metrics on PORT; a worker (or Socket Mode) on METRICS_PORT.
    metrics_token: SecretStr | None = None
    metrics_port: int | None = Field(default=None, ge=1, le=65_535)
    log_level: str = "INFO"
    log_format: str = "text"

    @field_validator("refold_allowed_hosts", mode="before")
    @classmethod
    def _hosts(cls, value: object) -> object:
        hosts = _split_csv(value)
        if isinstance(hosts, list):
            return [str(h).lower() for h in hosts]
        return hosts

    @field_validator("refold_unfurl_domains", mode="before")
    @classmethod
    def _unfurl_domains(cls, value: object) -> object:
        domains = _split_csv(value)
        if isinstance(domains, list):
            return [str(d).lower().strip(".") for d in domains]
        return domains

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("https://", "http://")) or " " in value:
            raise ValueError("must be the bot's public http(s) base URL, like https://bot.example.com")
        return value.rstrip("/")

    @field_validator("refold_dashboard_url")
    @classmethod
    def _dashboard_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("https://", "http://")) or "{execution_id}" not in value:
            raise ValueError(
                "must be an http(s) URL with {execution_id} in it, like https://app.refold.ai/executions/{execution_id}"
            )
        return value

    @field_validator("log_format")
    @classmethod
    def _log_format(cls, value: str) -> str:
        if value.lower() not in {"json", "text"}:
            raise ValueError("must be json or text")
        return value.lower()

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        if value.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return value.upper()

    # --- derived views -------------------------------------------------

    @property
    def credential_keys(self) -> list[str]:
        """Fernet keys, newest first."""
        raw = self.credentials_key.get_secret_value() if self.credentials_key else ""
        return [k.strip() for k in raw.split(",") if k.strip()]

    @property
    def socket_mode(self) -> bool:
        return self.slack_app_token is not None

    @property
    def slack_mode(self) -> SlackMode:
        return SlackMode.OAUTH if self.slack_client_id else SlackMode.SINGLE_WORKSPACE

    # --- requirements per process ---------------------------------------

    def require_credentials_key(self) -> None:
        problems = self._credentials_key_problems()
        if problems:
            raise SettingsError.of(problems)

    def _credentials_key_problems(self) -> list[tuple[str, str]]:
        keys = self.credential_keys
        if not keys:
            return [
                ("CREDENTIALS_KEY", "is not set; run `python -m bot keygen` and put the printed key in it")
            ]
        for key in keys:
            try:
                Fernet(key.encode())
            except (ValueError, TypeError):
                return [
                    (
                        "CREDENTIALS_KEY",
                        "holds a value that is not a Fernet key; generate one with `python -m bot keygen`",
                    )
                ]
        return []

    def redis_url_problems(self) -> list[tuple[str, str]]:
        redis_url = self.redis_url.get_secret_value()
        if is_embedded(redis_url):
            try:
                embedded_path(redis_url)
            except BadRedisUrl as exc:
                return [("REDIS_URL", str(exc))]
            return []
        if is_sentinel(redis_url):
            try:
                parse_sentinel_url(redis_url)
            except BadRedisUrl as exc:
                return [("REDIS_URL", str(exc))]
            return []
        if (
            redis_url.startswith(("redis+cluster://", "rediss+cluster://"))
            or "cluster" in redis_url.split("://")[0]
        ):
            return [
                (
                    "REDIS_URL",
                    "Redis Cluster is not supported: the bot's scripts touch several keys at once "
                    "(use one primary, with Sentinel for failover; docs/operations.md)",
                )
            ]
        if not redis_url.startswith(("redis://", "rediss://", "unix://")):
            return [
                (
                    "REDIS_URL",
                    "must start with redis://, rediss://, unix://, redis+sentinel:// or be embedded",
                )
            ]
        return []

    def serve_problems(self) -> list[tuple[str, str]]:
        """Everything `python -m bot serve` needs, all of it checked, one (variable, problem) each."""
        problems = self._credentials_key_problems()
        oauth = bool(self.slack_client_id or self.slack_client_secret)
        if self.slack_client_id and not self.slack_client_secret:
            problems.append(("SLACK_CLIENT_SECRET", "is required when SLACK_CLIENT_ID is set (OAuth mode)"))
        if self.slack_client_secret and not self.slack_client_id:
            problems.append(("SLACK_CLIENT_ID", "is required when SLACK_CLIENT_SECRET is set (OAuth mode)"))
        if self.slack_client_id and self.slack_bot_token:
            problems.append(
                (
                    "SLACK_BOT_TOKEN",
                    "conflicts with SLACK_CLIENT_ID: set SLACK_BOT_TOKEN for one workspace "
                    "or SLACK_CLIENT_ID/SLACK_CLIENT_SECRET for OAuth, not both",
                )
            )
        if self.slack_client_id and self.socket_mode:
            problems.append(
                ("SLACK_APP_TOKEN", "Socket Mode serves one workspace; unset it or unset SLACK_CLIENT_ID")
            )
        if not oauth and not self.slack_bot_token:
            problems.append(
                (
                    "SLACK_BOT_TOKEN",
                    "is not set; set it (xoxb-…, OAuth & Permissions page) for one workspace, or "
                    "SLACK_CLIENT_ID and SLACK_CLIENT_SECRET for multi-workspace OAuth",
                )
            )
        if self.slack_bot_token and not self.slack_bot_token.get_secret_value().startswith("xoxb-"):
            problems.append(("SLACK_BOT_TOKEN", "must be a bot token starting with xoxb-"))
        if self.socket_mode:
            app_token = self.slack_app_token.get_secret_value() if self.slack_app_token else ""
            if not app_token.startswith("xapp-"):
                problems.append(("SLACK_APP_TOKEN", "must be an app-level token starting with xapp-"))
        elif not self.slack_signing_secret:
            problems.append(
                (
                    "SLACK_SIGNING_SECRET",
                    "is required in HTTP mode; copy it from your Slack app's Basic Information page "
                    "(or set SLACK_APP_TOKEN for Socket Mode)",
                )
            )
        problems += self.redis_url_problems()
        if not self.refold_api_url.startswith(("http://", "https://")):
            problems.append(("REFOLD_API_URL", "must be an http(s) URL such as https://app.refold.ai"))
        if bool(self.refold_api_key) != bool(self.refold_linked_account_id):
            missing = "REFOLD_LINKED_ACCOUNT_ID" if self.refold_api_key else "REFOLD_API_KEY"
            problems.append(
                (
                    missing,
                    "the fallback credentials need both REFOLD_API_KEY and REFOLD_LINKED_ACCOUNT_ID, or neither",
                )
            )
        return problems

    def require_serve(self) -> None:
        problems = self.serve_problems()
        if problems:
            raise SettingsError.of(problems)


def _friendly(error: dict[str, object]) -> str:
    """pydantic's message, in the words of a setting: no "Value error," or "Input should be"."""
    message = str(error.get("msg", "is invalid"))
    message = message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    kind = error.get("type")
    if kind in {"int_parsing", "int_from_float"}:
        return "must be a whole number"
    if kind == "float_parsing":
        return "must be a number"
    if kind == "bool_parsing":
        return "must be true or false"
    return message.replace("Input should be", "must be")


def load_settings() -> Settings:
    """Load settings; every invalid value is reported at once, one line each, naming its variable."""
    try:
        return Settings()
    except ValidationError as exc:
        problems: list[tuple[str, str]] = []
        for error in exc.errors():
            variable = str(error["loc"][0]).upper() if error.get("loc") else "settings"
            problems.append((variable, _friendly(dict(error))))
        raise SettingsError.of(problems) from None


def inspect_settings(purpose: str = "serve") -> tuple[Settings, list[tuple[str, str]]]:
    """The settings (invalid values at their defaults) and every problem for `purpose`, at once.

    `purpose` is "serve" (everything the Slack app needs), "store" (what reading and writing the
    encrypted store needs) or "values" (only that every value given is valid).
    """
    try:
        settings = load_settings()
        invalid: list[tuple[str, str]] = []
    except SettingsError as error:
        invalid = error.problems
        fields = Settings.model_fields
        # Read the rest with the invalid ones at their defaults, so their neighbours are checked too.
        defaults = {
            name.lower(): fields[name.lower()].default for name in error.variables if name.lower() in fields
        }
        settings = Settings(**defaults)
    checks: dict[str, Callable[[], list[tuple[str, str]]]] = {
        "serve": settings.serve_problems,
        "store": lambda: settings._credentials_key_problems() + settings.redis_url_problems(),
        "values": lambda: [],
    }
    more = checks[purpose]()
    known = {name for name, _ in invalid}
    return settings, invalid + [problem for problem in more if problem[0] not in known]


def load_settings_for(purpose: str = "serve") -> Settings:
    settings, problems = inspect_settings(purpose)
    if problems:
        raise SettingsError.of(problems)
    return settings
