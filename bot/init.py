"""`python -m bot init`: a guided set-up for a person at a terminal.

It asks which way the bot reaches Slack, shows the Slack app manifest to paste (with the person's URL
filled in) before asking for any token, since the tokens only exist once the app does, then checks
each token on the spot (auth.test for the bot token, apps.connections.open for the app-level token,
PING for a Redis URL), and writes `.env` with a fresh CREDENTIALS_KEY (never replacing one without
asking). The Redis question's default is the embedded Redis, so a laptop needs nothing else.
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

from bot.redis_urls import EMBEDDED, is_embedded
from bot.settings import Settings
from bot.store.embedded import NO_SERVER, find_server
from bot.store.redis import make_redis, ping_problem, safe_url

ROOT = Path(__file__).resolve().parent.parent
PLACEHOLDER_URL = "https://bot.example.com"
DEFAULT_REDIS = EMBEDDED
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
    prompt.say("")
    prompt.say("Redis keeps connected workspaces and the job queue. Press Enter for an embedded one (the bot")
    prompt.say("runs it, data in .bot-data/, one machine only), or give your Redis's URL for production.")
    while True:
        url = prompt.ask("Redis URL", DEFAULT_REDIS)
        if is_embedded(url):
            if find_server() is None:
                prompt.say(f"  Before starting the bot: {NO_SERVER}.")
            else:
                prompt.say("  ok: an embedded Redis, started with the bot (data in .bot-data/)")
            return url
        if not url.startswith(
            ("redis://", "rediss://", "unix://", "redis+sentinel://", "rediss+sentinel://")
        ):
            prompt.say(
                "  It must be embedded, or start with redis://, rediss://, unix:// or redis+sentinel://."
            )
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


def run_init(prompt: Prompter | None = None, env_path: Path | None = None, *, starting: bool = False) -> int:
    """`starting`: run by `python -m bot` on a first run, which serves once .env is written."""
    if prompt is None:
        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            print(NO_TERMINAL, file=sys.stderr)
            return EXIT_USAGE
        prompt = Prompter()
    env_path = env_path or Path.cwd() / ".env"
    if starting:
        prompt.say("No .env here yet, so first a few questions.")
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
    url = None if mode == "socket" else _public_url(prompt)
    _show_manifest(prompt, mode, url)
    where_bot = "It is on your Slack app's OAuth & Permissions page (Bot User OAuth Token)."
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
        values["SLACK_SIGNING_SECRET"] = _signing_secret(prompt)
    if mode == "oauth":
        values["SLACK_CLIENT_ID"] = prompt.ask("Client ID (Basic Information > App Credentials)")
        values["SLACK_CLIENT_SECRET"] = prompt.secret("Client secret")
    if url:
        values["PUBLIC_URL"] = url
    values["REDIS_URL"] = _redis(prompt)
    values["CREDENTIALS_KEY"] = Fernet.generate_key().decode()
    env_path.write_text(_env_text(values))
    env_path.chmod(0o600)
    prompt.say("")
    prompt.say(
        f"Wrote {env_path.name} with a new CREDENTIALS_KEY (keep it: it decrypts what the bot stores)."
    )
    prompt.say("")
    if starting:
        prompt.say("Starting the bot. Then, in Slack, an admin runs /execution connect.")
    else:
        prompt.say("Next: python -m bot          (then, in Slack, an admin runs /execution connect)")
    return 0


TOKENS_WHERE = {
    "socket": [
        "Then: Basic Information > App-Level Tokens > Generate Token and Scopes, with the",
        "connections:write scope (that is the xapp-… token), and Install App (the xoxb-… token).",
    ],
    "http": [
        "Then Install App to your workspace: the Bot User OAuth Token is the xoxb-… token, and the",
        "Signing Secret is on Basic Information > App Credentials.",
    ],
    "oauth": [
        "Then Manage Distribution > Activate Public Distribution; the Client ID, Client Secret and",
        "Signing Secret are on Basic Information > App Credentials.",
    ],
}


def _show_manifest(prompt: Prompter, mode: str, url: str | None) -> None:
    """The app comes before its tokens: a person who has not made it yet learns how, here."""
    manifest = manifest_for(mode, url)
    prompt.say("")
    prompt.say("First the Slack app. At https://api.slack.com/apps choose Create New App > From an app")
    prompt.say("manifest, pick your workspace, and paste this manifest:")
    if manifest is not None:
        prompt.say("-" * 72)
        prompt.say(manifest.rstrip())
        prompt.say("-" * 72)
    for text in TOKENS_WHERE[mode]:
        prompt.say(text)
    prompt.ask("Press Enter once the app is created and installed")


def _signing_secret(prompt: Prompter) -> str:
    while True:
        secret = prompt.secret("Signing secret (Basic Information > App Credentials)")
        if re.fullmatch(r"[0-9a-f]{32}", secret):
            return secret
        prompt.say("  Slack signing secrets are 32 hexadecimal characters; copy it again.")
        if secret and prompt.yes("  Keep this one anyway?"):
            return secret
