"""Settings refuse to start on missing or contradictory values; workspace base URLs are allowlisted."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from bot.redis_urls import SentinelUrl, parse_sentinel_url
from bot.refold.errors import DisallowedBaseUrl
from bot.refold.urls import check_workspace_base_url
from bot.settings import Settings, SettingsError, inspect_settings
from bot.store.redis import safe_url

ALLOWED = ["app.refold.ai", "api.gocobalt.io"]
KEY = Fernet.generate_key().decode()


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for var in (
        "SLACK_SIGNING_SECRET",
        "SLACK_BOT_TOKEN",
        "SLACK_CLIENT_ID",
        "SLACK_CLIENT_SECRET",
        "SLACK_APP_TOKEN",
        "CREDENTIALS_KEY",
        "REFOLD_API_KEY",
        "REFOLD_LINKED_ACCOUNT_ID",
        "REDIS_URL",
        "PORT",
        "LOG_LEVEL",
        "LOG_FORMAT",
    ):
        monkeypatch.delenv(var, raising=False)


def test_defaults_match_design() -> None:
    s = Settings()
    assert s.slack_api_url == "https://slack.com/api/"
    assert s.redis_url.get_secret_value() == "redis://localhost:6379/0"
    assert s.refold_api_url == "https://app.refold.ai"
    assert s.refold_allowed_hosts == ALLOWED
    assert (s.port, s.log_level, s.log_format) == (3000, "INFO", "text")


def test_env_file_is_read(tmp_path) -> None:
    (tmp_path / ".env").write_text("PORT=4567\nREFOLD_ALLOWED_HOSTS=a.example, B.example\n")
    s = Settings()
    assert s.port == 4567 and s.refold_allowed_hosts == ["a.example", "b.example"]


def test_secrets_never_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-secret-value-123")
    monkeypatch.setenv("REFOLD_API_KEY", "tk_supersecret")
    monkeypatch.setenv("CREDENTIALS_KEY", KEY)
    text = repr(Settings()) + str(Settings().model_dump())
    assert "xoxb-secret-value-123" not in text and "tk_supersecret" not in text and KEY not in text


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({}, "CREDENTIALS_KEY"),
        ({"CREDENTIALS_KEY": "not-a-key"}, "CREDENTIALS_KEY"),
        ({"CREDENTIALS_KEY": KEY}, "SLACK_BOT_TOKEN"),
        ({"CREDENTIALS_KEY": KEY, "SLACK_BOT_TOKEN": "xoxb-1"}, "SLACK_SIGNING_SECRET"),
        (
            {"CREDENTIALS_KEY": KEY, "SLACK_BOT_TOKEN": "xoxp-1", "SLACK_SIGNING_SECRET": "s"},
            "SLACK_BOT_TOKEN",
        ),
        ({"CREDENTIALS_KEY": KEY, "SLACK_CLIENT_ID": "1.2"}, "SLACK_CLIENT_SECRET"),
        (
            {
                "CREDENTIALS_KEY": KEY,
                "SLACK_CLIENT_ID": "1.2",
                "SLACK_CLIENT_SECRET": "c",
                "SLACK_BOT_TOKEN": "xoxb-1",
                "SLACK_SIGNING_SECRET": "s",
            },
            "SLACK_BOT_TOKEN",
        ),
        (
            {"CREDENTIALS_KEY": KEY, "SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xoxb-nope"},
            "SLACK_APP_TOKEN",
        ),
        (
            {
                "CREDENTIALS_KEY": KEY,
                "SLACK_BOT_TOKEN": "xoxb-1",
                "SLACK_SIGNING_SECRET": "s",
                "REFOLD_API_KEY": "tk",
            },
            "REFOLD_LINKED_ACCOUNT_ID",
        ),
        (
            {
                "CREDENTIALS_KEY": KEY,
                "SLACK_BOT_TOKEN": "xoxb-1",
                "SLACK_SIGNING_SECRET": "s",
                "REDIS_URL": "http://x",
            },
            "REDIS_URL",
        ),
    ],
)
def test_serve_requirements_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: dict, variable: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SettingsError) as caught:
        Settings().require_serve()
    assert variable in caught.value.variables
    # One line per problem, each starting with the variable it names; no pydantic wording.
    assert len(caught.value.lines) == len(caught.value.variables)
    for line, name in zip(caught.value.lines, caught.value.variables, strict=True):
        assert line.startswith(f"{name}: ") and "\n" not in line and "Value error" not in line


def test_every_problem_is_reported_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "eighty")
    monkeypatch.setenv("LOG_FORMAT", "xml")
    monkeypatch.setenv("REDIS_URL", "http://nope")
    _, problems = inspect_settings("serve")
    named = dict(problems)
    assert set(named) == {
        "PORT",
        "LOG_FORMAT",
        "CREDENTIALS_KEY",
        "SLACK_BOT_TOKEN",
        "SLACK_SIGNING_SECRET",
        "REDIS_URL",
    }
    assert named["PORT"] == "must be a whole number"
    assert named["LOG_FORMAT"] == "must be json or text"
    assert all("Value error" not in text and "Input should" not in text for text in named.values())


def test_redis_cluster_is_refused_with_a_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis+cluster://h:7000")
    problems = dict(inspect_settings("serve")[1])
    assert "Redis Cluster is not supported" in problems["REDIS_URL"]
    assert "docs/operations.md" in problems["REDIS_URL"]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "redis+sentinel://s1:26379,s2:26380,s3/main",
            SentinelUrl([("s1", 26379), ("s2", 26380), ("s3", 26379)], "main", 0, None, None, False),
        ),
        (
            "rediss+sentinel://ops:p%40ss@10.0.0.1:5000/cache/3",
            SentinelUrl([("10.0.0.1", 5000)], "cache", 3, "ops", "p@ss", True),
        ),
        ("redis+sentinel://only-pass@h:1/svc", SentinelUrl([("h", 1)], "svc", 0, None, "only-pass", False)),
    ],
)
def test_sentinel_urls_are_read(url: str, expected: SentinelUrl, monkeypatch: pytest.MonkeyPatch) -> None:
    assert parse_sentinel_url(url) == expected
    monkeypatch.setenv("REDIS_URL", url)
    assert "REDIS_URL" not in dict(inspect_settings("serve")[1])


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("redis+sentinel://h:26379", "service name is missing"),
        ("redis+sentinel://h:26379/main/x", "(a number)"),
        ("redis+sentinel://h:port/main", "not a number"),
        ("redis+sentinel://h1,,h2/main", "host:port"),
    ],
)
def test_bad_sentinel_urls_say_what_is_wrong_without_the_password(
    url: str, words: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", url.replace("://", "://u:hunter22@"))
    problem = dict(inspect_settings("serve")[1])["REDIS_URL"]
    assert words in problem and "hunter22" not in problem


def test_a_sentinel_url_is_shown_without_its_password() -> None:
    shown = safe_url("redis+sentinel://ops:hunter22@s1:26379,s2:26380/main/2")
    assert shown == "redis+sentinel://***@s1:26379,s2:26380/main/2"


def test_socket_mode_needs_no_signing_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREDENTIALS_KEY", KEY)
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-1-abc")
    Settings().require_serve()


@pytest.mark.parametrize(
    "url", ["https://app.refold.ai", "https://API.gocobalt.io/", "https://app.refold.ai:443"]
)
def test_allowed_base_urls(url: str) -> None:
    assert check_workspace_base_url(url, ALLOWED) in {"https://app.refold.ai", "https://api.gocobalt.io"}


@pytest.mark.parametrize(
    "url",
    [
        "http://app.refold.ai",
        "https://evil.example",
        "https://app.refold.ai.evil.example",
        "https://user:pw@app.refold.ai",
        "https://app.refold.ai@169.254.169.254",
        "https://169.254.169.254",
        "https://[::1]",
        "https://127.0.0.1",
        "https://app.refold.ai:8443",
        "https://app.refold.ai/api?x=1",
        "ftp://app.refold.ai",
        "app.refold.ai",
        "https://",
        "https://app.refold.ai:99999",
        "javascript:alert(1)",
    ],
)
def test_disallowed_base_urls(url: str) -> None:
    with pytest.raises(DisallowedBaseUrl):
        check_workspace_base_url(url, ALLOWED)


def test_the_dashboard_template_must_name_the_execution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REFOLD_DASHBOARD_URL", "https://app.refold.ai/executions")
    problems = dict(inspect_settings("serve")[1])
    assert "{execution_id}" in problems["REFOLD_DASHBOARD_URL"]
    monkeypatch.setenv("REFOLD_DASHBOARD_URL", "https://app.refold.ai/executions/{execution_id}")
    assert "REFOLD_DASHBOARD_URL" not in dict(inspect_settings("serve")[1])
