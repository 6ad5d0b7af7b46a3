"""Show output: a failing node's button, or the card's menu of nodes, opens that node's full output.

The modal opens at once (Slack's trigger_id lasts 3 s), saying it is looking; the lookup then fills
it with `views.update`. Lookups of a card just shown usually come from the cache.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import BotError
from bot.parse import FoundExecution
from bot.render import messages
from bot.render.buttons import PICK_OUTPUT_ACTION, SHOW_OUTPUT_ACTION, decode_node
from bot.render.errors import describe
from bot.render.output import loading_view, message_view, node_output_view
from bot.slack.payloads import Interaction
from bot.slack.responder import Responder
from bot.usecases.lookup import ExecutionLookup

log = logging.getLogger(__name__)


def register(app: AsyncApp, responder: Responder, lookup: ExecutionLookup) -> None:
    for action_id in (SHOW_OUTPUT_ACTION, PICK_OUTPUT_ACTION):

        @app.action(action_id)
        async def show(
            ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
        ) -> None:
            await ack()
            interaction = Interaction.read(body, context)
            chosen = decode_node(interaction.action_value, interaction.action_block_id)
            if chosen is None:
                responder.tell(client, interaction.reply_target(), messages.DAMAGED_BUTTON)
                return
            responder.later(_open_then_fill(client, lookup, interaction, *chosen), "node-output")


async def _open_then_fill(
    client: AsyncWebClient,
    lookup: ExecutionLookup,
    interaction: Interaction,
    found: FoundExecution,
    index: int,
) -> None:
    try:
        opened = await client.views_open(
            trigger_id=interaction.trigger_id, view=loading_view(found.execution_id)
        )
    except SlackApiError as exc:
        log.warning("views.open for node output failed: %s", exc.response.get("error"))
        return
    view_id = (opened.get("view") or {}).get("id")
    try:
        result = await lookup.lookup(interaction.workspace, found.execution_id, found.linked_account_id)
        view = node_output_view(result.execution, index)
    except BotError as exc:
        log.info("node output lookup failed: %s", type(exc).__name__)
        view = message_view(describe(exc))
    try:
        await client.views_update(view_id=view_id, view=view)
    except SlackApiError as exc:
        log.warning("views.update for node output failed: %s", exc.response.get("error"))
