"""The OAuth install flow: Redis stores, and friendly pages for the installer."""

from __future__ import annotations

import html

import redis.asyncio as aioredis
from slack_bolt.oauth.async_callback_options import AsyncCallbackOptions, AsyncFailureArgs, AsyncSuccessArgs
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_bolt.response import BoltResponse

from bot.settings import Settings
from bot.store.installations import RedisInstallationStore, RedisOAuthStateStore

# What the bot asks for; manifest.yml declares the same (a test checks).
BOT_SCOPES = ["commands", "chat:write", "chat:write.public", "users:read"]
STATE_SECONDS = 600

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;line-height:1.5}}
code{{background:#f3f3f3;padding:.1rem .3rem;border-radius:3px}}</style></head>
<body><h1>{title}</h1>{body}</body></html>"""


def _page(status: int, title: str, body: str) -> BoltResponse:
    return BoltResponse(
        status=status,
        body=PAGE.format(title=html.escape(title), body=body),
        headers={"Content-Type": "text/html; charset=utf-8"},
    )


async def _success(args: AsyncSuccessArgs) -> BoltResponse:
    team = args.installation.team_name or args.installation.enterprise_name or "your workspace"
    return _page(
        200,
        "Refold Executions is installed",
        (
            f"<p>The bot is installed in <strong>{html.escape(team)}</strong>.</p>"
            "<p>Next, a workspace admin connects Refold: in Slack, run <code>/execution connect</code> and paste "
            "a Refold API key. Then anyone can run <code>/execution &lt;execution_id&gt;</code>.</p>"
        ),
    )


async def _failure(args: AsyncFailureArgs) -> BoltResponse:
    reason = args.reason or "unknown"
    if "state" in reason:
        advice = (
            "This install link has expired or was already used. Start again from the "
            '<a href="/slack/install">install page</a>.'
        )
    elif reason == "access_denied":
        advice = "The installation was cancelled in Slack. You can start again from the install page."
    else:
        advice = "Slack did not complete the installation. Start again from the install page."
    return _page(
        args.suggested_status_code or 400,
        "Installation did not finish",
        f"<p>{advice}</p><p>Reason: <code>{html.escape(reason)}</code></p>",
    )


def oauth_settings(
    settings: Settings, redis: aioredis.Redis, store: RedisInstallationStore
) -> AsyncOAuthSettings:
    secret = settings.slack_client_secret.get_secret_value() if settings.slack_client_secret else None
    return AsyncOAuthSettings(
        client_id=settings.slack_client_id,
        client_secret=secret,
        scopes=BOT_SCOPES,
        installation_store=store,
        state_store=RedisOAuthStateStore(redis, STATE_SECONDS),
        state_expiration_seconds=STATE_SECONDS,
        callback_options=AsyncCallbackOptions(success=_success, failure=_failure),
    )
