"""`python -m bot init`: a guided set-up for a person at a terminal.

It asks which way the bot reaches Slack, checks each token on the spot (auth.test for the bot
token, apps.connections.open for the app-level token, PING for Redis), writes `.env` with a fresh
CREDENTIALS_KEY (never replacing one without asking), and prints the Slack app manifest to paste,
with the person's URL filled in.
"""

from __future__ import annotations

import asyncio
import getpass
import os
import re
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from pydantic import SecretStr
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.settings import Settings
from bot.store.redis import make_redis, ping_problem, safe_url

ROOT = Path(__file__).resolve().parent.parent
PLACEHOLDER_URL = "https://bot.example.com"
DEFAULT_REDIS = "redis://localhost:6379/0"
EXIT_USAGE = 2

NO_TERMINAL = (
    "python -m bot init asks questions and needs a terminal; without one, copy .env.example to .env "
    "and fill it in (see README.md)."
)

MODES = {
    "1": ("socket", "Socket Mode: try it out, no public URL needed (one workspace)"),
    "2": ("http", "HTTP: one workspace, Slack calls your public URL"),
    "3": ("oauth", "OAuth: many workspaces install it from your public URL"),
}


class Prompter:
    """Questions and answers on the terminal; secrets are read without echo."""

    def __init__(
        self, ask: Callable[[str], str] = input, ask_secret: Callable[[str], str] = getpass.getpass
    ) -> None:
        self._ask = ask
        self._ask_secret = ask_secret

    def say(self, text: str = "") -> None:
        print(text, flush=True)

    def ask(self, question: str, default: str | None = None) -> str:
        suffix = f" [{default}]" if default else ""
        answer = self._ask(f"{question}{suffix}: ").strip()
        return answer or (default or "")

    def secret(self, question: str) -> str:
        return self._ask_secret(f"{question} (hidden): ").strip()

    def yes(self, question: str, default: bool = False) -> bool:
        answer = self._ask(f"{question} [{'Y/n' if default else 'y/N'}]: ").strip().lower()
        return default if not answer else answer in {"y", "yes"}


def _slack_client(token: str) -> AsyncWebClient:
    return AsyncWebClient(
        token=token,
        base_url=os.environ.get("SLACK_API_URL") or Settings.model_fields["slack_api_url"].default,
    )


async def _auth_test(token: str) -> str:
    response = await _slack_client(token).auth_test()
    return f"the bot @{response.get('user')} in workspace {response.get('team')}"


async def _connections_open(token: str) -> str:
    await _slack_client(token).apps_connections_open(app_token=token)
    return "Socket Mode connections allowed"


async def _redis_problem(url: str) -> str | None:
    settings = Settings(redis_url=SecretStr(url), redis_timeout_seconds=2.0, _env_file=None)  # type: ignore[call-arg]
    client = make_redis(settings)
    try:
        return await ping_problem(client)
    finally:
        await client.aclose()


def _checked_token(
    prompt: Prompter, question: str, prefix: str, check: Callable[[str], Coroutine[Any, Any, str]], where: str
) -> str:
    """Ask until Slack accepts the token (or the person keeps one Slack refused, on purpose)."""
    while True:
        token = prompt.secret(question)
        if not token.startswith(prefix):
            prompt.say(f"  That does not start with {prefix}. {where}")
            continue
        try:
            found = asyncio.run(check(token))
        except SlackApiError as exc:
            prompt.say(f"  Slack refused it: {exc.response.get('error')}. {where}")
            if prompt.yes("  Keep it anyway?"):
                return token
            continue
        except Exception as exc:
            prompt.say(f"  Could not reach Slack to check it ({type(exc).__name__}).")
            if prompt.yes("  Keep it unchecked?", default=True):
                return token
            continue
        prompt.say(f"  ok: {found}")
        return token


def _public_url(prompt: Prompter) -> str:
    while True:
        url = prompt.ask("Public URL where Slack reaches the bot (https://…)").rstrip("/")
        if re.fullmatch(r"https://[A-Za-z0-9.-]+(:\d+)?(/[^\s]*)?", url):
            return url
        prompt.say("  It must be an https:// URL, such as https://bot.example.org.")


def _redis(prompt: Prompter) -> str:
    while True:
        url = prompt.ask("Redis URL", DEFAULT_REDIS)
        if not url.startswith(("redis://", "rediss://", "unix://")):
            prompt.say("  It must start with redis://, rediss:// or unix://.")
            continue
        problem = asyncio.run(_redis_problem(url))
        if problem is None:
            prompt.say(f"  ok: {safe_url(url)} answers PING")
            return url
        prompt.say(f"  {safe_url(url)} is not answering: {problem}.")
        if prompt.yes("  Use it anyway (start Redis before the bot)?"):
            return url


def _env_text(values: dict[str, str]) -> str:
    lines = ["# Written by `python -m bot init`. Every variable is described in README.md (Settings)."]
    lines += [f"{name}={value}" for name, value in values.items()]
    return "\n".join(lines) + "\n"


def manifest_for(mode: str, url: str | None) -> str | None:
    name = "manifest.socket-mode.yml" if mode == "socket" else "manifest.yml"
    path = ROOT / name
    if not path.exists():
        return None
    text = path.read_text()
    return text.replace(PLACEHOLDER_URL, url) if url else text


def run_init(prompt: Prompter | None = None, env_path: Path | None = None) -> int:
    if prompt is None:
        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            print(NO_TERMINAL, file=sys.stderr)
            return EXIT_USAGE
        prompt = Prompter()
    env_path = env_path or Path.cwd() / ".env"
    prompt.say("Refold execution bot: set-up. Your answers are written to .env in this folder.")
    if env_path.exists() and not prompt.yes(f"{env_path.name} exists already. Replace it?"):
        prompt.say(f"Kept your {env_path.name}; nothing was written. Start the bot with: python -m bot")
        return 0
    prompt.say("")
    prompt.say("How will the bot reach Slack?")
    for number, (_, text) in MODES.items():
        prompt.say(f"  {number}) {text}")
    choice = prompt.ask("Choose", "1")
    while choice not in MODES:
        choice = prompt.ask("Choose 1, 2 or 3", "1")
    mode = MODES[choice][0]
    values: dict[str, str] = {}
    where_bot = "It is on your Slack app's OAuth & Permissions page (Bot User OAuth Token)."
    url: str | None = None
    if mode in {"socket", "http"}:
        values["SLACK_BOT_TOKEN"] = _checked_token(
            prompt, "Bot token (xoxb-…)", "xoxb-", _auth_test, where_bot
        )
    if mode == "socket":
        values["SLACK_APP_TOKEN"] = _checked_token(
            prompt,
            "App-level token (xapp-…)",
            "xapp-",
            _connections_open,
            "Make one on Basic Information > App-Level Tokens, with the connections:write scope.",
        )
    else:
        url = _public_url(prompt)
        values["SLACK_SIGNING_SECRET"] = _signing_secret(prompt)
    if mode == "oauth":
        values["SLACK_CLIENT_ID"] = prompt.ask("Client ID (Basic Information > App Credentials)")
        values["SLACK_CLIENT_SECRET"] = prompt.secret("Client secret")
        values["PUBLIC_URL"] = url or ""
    elif url:
        values["PUBLIC_URL"] = url
    values["REDIS_URL"] = _redis(prompt)
    values["CREDENTIALS_KEY"] = Fernet.generate_key().decode()
    env_path.write_text(_env_text(values))
    env_path.chmod(0o600)
    prompt.say("")
    prompt.say(
        f"Wrote {env_path.name} with a new CREDENTIALS_KEY (keep it: it decrypts what the bot stores)."
    )
    manifest = manifest_for(mode, url)
    if manifest is not None:
        prompt.say("")
        prompt.say("Paste this manifest at https://api.slack.com/apps > your app > App Manifest:")
        prompt.say("-" * 72)
        prompt.say(manifest.rstrip())
        prompt.say("-" * 72)
    prompt.say("")
    prompt.say("Next: python -m bot          (then, in Slack, an admin runs /execution connect)")
    return 0


def _signing_secret(prompt: Prompter) -> str:
    while True:
        secret = prompt.secret("Signing secret (Basic Information > App Credentials)")
        if re.fullmatch(r"[0-9a-f]{32}", secret):
            return secret
        prompt.say("  Slack signing secrets are 32 hexadecimal characters; copy it again.")
        if secret and prompt.yes("  Keep this one anyway?"):
            return secret
