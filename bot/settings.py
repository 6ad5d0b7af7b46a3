"""Runtime configuration, read from the environment and an optional `.env`.

Names are a contract with deployment tooling (see DESIGN.md); keep them.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from cryptography.fernet import Fernet
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class SettingsError(Exception):
    """A setting is missing or contradictory. The message is one line meant for the operator."""

    def __init__(self, variable: str, problem: str) -> None:
        self.variable = variable
        super().__init__(f"{variable}: {problem}")


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

    redis_url: SecretStr = SecretStr("redis://localhost:6379/0")
    # Heroku-style managed Redis presents self-signed certificates; verification stays on unless asked.
    redis_tls_insecure: bool = False
    redis_timeout_seconds: float = Field(default=2.0, gt=0, le=30)

    credentials_key: SecretStr | None = None

    refold_api_url: str = "https://app.refold.ai"
    refold_allowed_hosts: Annotated[list[str], NoDecode] = ["app.refold.ai", "api.gocobalt.io"]
    refold_api_key: SecretStr | None = None
    refold_linked_account_id: str | None = None
    refold_timeout_seconds: float = Field(default=8.0, gt=0, le=60)

    terminal_cache_seconds: int = Field(default=600, ge=0, le=86_400)
    credentials_cache_seconds: float = Field(default=5.0, ge=0, le=300)

    port: int = Field(default=3000, ge=1, le=65_535)
    log_level: str = "INFO"
    log_format: str = "text"

    @field_validator("refold_allowed_hosts", mode="before")
    @classmethod
    def _hosts(cls, value: object) -> object:
        hosts = _split_csv(value)
        if isinstance(hosts, list):
            return [str(h).lower() for h in hosts]
        return hosts

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
        keys = self.credential_keys
        if not keys:
            raise SettingsError(
                "CREDENTIALS_KEY", "is not set; run `python -m bot keygen` and put the printed key in it"
            )
        for key in keys:
            try:
                Fernet(key.encode())
            except (ValueError, TypeError):
                raise SettingsError(
                    "CREDENTIALS_KEY",
                    "holds a value that is not a Fernet key; generate one with `python -m bot keygen`",
                ) from None

    def require_serve(self) -> None:
        """Everything `python -m bot serve` needs, checked before anything starts."""
        self.require_credentials_key()
        if self.slack_client_id and not self.slack_client_secret:
            raise SettingsError("SLACK_CLIENT_SECRET", "is required when SLACK_CLIENT_ID is set (OAuth mode)")
        if self.slack_client_secret and not self.slack_client_id:
            raise SettingsError("SLACK_CLIENT_ID", "is required when SLACK_CLIENT_SECRET is set (OAuth mode)")
        if self.slack_client_id and self.slack_bot_token:
            raise SettingsError(
                "SLACK_BOT_TOKEN",
                "conflicts with SLACK_CLIENT_ID: set SLACK_BOT_TOKEN for one workspace "
                "or SLACK_CLIENT_ID/SLACK_CLIENT_SECRET for OAuth, not both",
            )
        if self.slack_client_id and self.socket_mode:
            raise SettingsError(
                "SLACK_APP_TOKEN", "Socket Mode serves one workspace; unset it or unset SLACK_CLIENT_ID"
            )
        if not self.slack_client_id and not self.slack_bot_token:
            raise SettingsError(
                "SLACK_BOT_TOKEN",
                "is not set; set it (xoxb-…) for one workspace, or SLACK_CLIENT_ID and "
                "SLACK_CLIENT_SECRET for multi-workspace OAuth",
            )
        if self.slack_bot_token and not self.slack_bot_token.get_secret_value().startswith("xoxb-"):
            raise SettingsError("SLACK_BOT_TOKEN", "must be a bot token starting with xoxb-")
        if self.socket_mode:
            app_token = self.slack_app_token.get_secret_value() if self.slack_app_token else ""
            if not app_token.startswith("xapp-"):
                raise SettingsError("SLACK_APP_TOKEN", "must be an app-level token starting with xapp-")
        elif not self.slack_signing_secret:
            raise SettingsError(
                "SLACK_SIGNING_SECRET",
                "is required in HTTP mode; copy it from your Slack app's Basic Information page",
            )
        redis_url = self.redis_url.get_secret_value()
        if not redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise SettingsError("REDIS_URL", "must start with redis://, rediss:// or unix://")
        if not self.refold_api_url.startswith(("http://", "https://")):
            raise SettingsError("REFOLD_API_URL", "must be an http(s) URL such as https://app.refold.ai")
        if bool(self.refold_api_key) != bool(self.refold_linked_account_id):
            missing = "REFOLD_LINKED_ACCOUNT_ID" if self.refold_api_key else "REFOLD_API_KEY"
            raise SettingsError(
                missing,
                "the fallback credentials need both REFOLD_API_KEY and REFOLD_LINKED_ACCOUNT_ID, or neither",
            )


def load_settings() -> Settings:
    """Load settings, turning pydantic's report into one operator-facing line."""
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        variable = str(first["loc"][0]).upper() if first.get("loc") else "settings"
        raise SettingsError(variable, first["msg"]) from None
