"""Message shortcut `lookup_execution`: every execution in an alert, answered in its thread."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.parse import find_executions
from bot.render.blocks import Card, CardBudget
from bot.render.text import plural
from bot.slack.cards import card_of, fetch
from bot.slack.context import Reply, workspace_of
from bot.slack.dispatch import job, make_job, submit
from bot.slack.env import SlackEnv
from bot.workspace import Workspace

log = logging.getLogger(__name__)

SHORTCUT = "lookup_execution"
MAX_CARDS = 5
NONE_FOUND = (
    ":mag: No execution ID found in that message. Execution IDs are 24 hex characters; "
    "you can also type `/execution <execution_id>`."
)
TOO_LONG_ERRORS = {"msg_too_long", "invalid_blocks", "too_many_attachments"}


def register(app: AsyncApp, env: SlackEnv) -> None:
    @app.shortcut(SHORTCUT)
    async def lookup_from_message(
        ack: AsyncAck,
        body: dict[str, Any],
        client: AsyncWebClient,
        context: AsyncBoltContext,
    ) -> None:
        await ack()
        work = make_job("shortcut", body, workspace_of(context, body), bool(context.is_enterprise_install))
        env.tasks.spawn(submit(env, work, client), "shortcut")


@job("shortcut")
async def _shortcut_job(
    env: SlackEnv, job_data: dict[str, Any], reply: Reply, client: AsyncWebClient, workspace: Workspace
) -> None:
    await _answer(env, job_data["body"], reply, client, workspace)


async def _answer(
    env: SlackEnv, body: dict[str, Any], reply: Reply, client: AsyncWebClient, workspace: Workspace
) -> None:
    message = body.get("message") or {}
    found = find_executions(message)
    if not found:
        await reply.send(response_type="ephemeral", text=NONE_FOUND)
        return
    channel = (body.get("channel") or {}).get("id")
    thread_ts = message.get("thread_ts") or message.get("ts")
    in_thread = bool(channel and thread_ts)
    for item in found[:MAX_CARDS]:
        outcome = await fetch(env, workspace, item.execution_id, item.linked_account_id)
        if outcome.result is None:
            await reply.send(response_type="ephemeral", text=f"`{item.execution_id}`: {outcome.error}")
            continue
        if in_thread:
            in_thread = await _post_in_thread(
                client,
                channel,
                thread_ts,
                lambda budget, r=outcome.result: card_of(env, r, shareable=False, budget=budget),
            )
            if in_thread:
                continue
        card = card_of(env, outcome.result, shareable=True)
        await reply.send(response_type="ephemeral", text=card.text, blocks=card.blocks)
    if len(found) > MAX_CARDS:
        left = len(found) - MAX_CARDS
        await reply.send(
            response_type="ephemeral",
            text=f"That message names {plural(left, 'more execution')} than the {MAX_CARDS} "
            "shown; look them up with `/execution <execution_id>`.",
        )


async def _post_in_thread(client: AsyncWebClient, channel: str, thread_ts: str, render: Any) -> bool:
    """Post a card in the alert's thread, shrinking it if Slack says it is too big. False: can't post here."""
    budget = CardBudget()
    for _ in range(3):
        card: Card = render(budget)
        try:
            await client.chat_postMessage(
                channel=channel,
                thread_ts=thread_ts,
                text=card.text,
                blocks=card.blocks,
                unfurl_links=False,
                unfurl_media=False,
            )
            return True
        except SlackApiError as exc:
            error = exc.response.get("error")
            if error in TOO_LONG_ERRORS:
                log.warning("card rejected as %s; retrying smaller", error)
                budget = budget.smaller()
                continue
            log.info("cannot post in thread (%s); answering ephemerally", error)
            return False
    return False
