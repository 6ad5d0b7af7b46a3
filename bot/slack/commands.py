"""`/execution`: lookups, help, status, connect and disconnect."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.parse import InvalidCommand, LookupCommand, VerbCommand, parse_command
from bot.refold.credentials import AuthKind, mask_secret
from bot.render.messages import USAGE, describe_error
from bot.render.text import inline
from bot.slack import connect as connect_modal
from bot.slack.cards import card_of, fetch
from bot.slack.context import Reply, is_workspace_admin, workspace_of
from bot.slack.dispatch import job, make_job, submit
from bot.slack.env import SlackEnv
from bot.store.credentials import Scope
from bot.store.errors import CorruptCredentials, NotConnected, StoreUnavailable
from bot.workspace import Workspace

COMMAND = "/execution"
ADMIN_ONLY = ":lock: Only workspace admins and owners can change the Refold connection. Ask one of them."


def register(app: AsyncApp, env: SlackEnv) -> None:
    @app.command(COMMAND)
    async def execution_command(
        ack: AsyncAck,
        command: dict[str, Any],
        body: dict[str, Any],
        client: AsyncWebClient,
        context: AsyncBoltContext,
    ) -> None:
        parsed = parse_command(command.get("text"))
        if isinstance(parsed, InvalidCommand):
            await ack(response_type="ephemeral", text=f":warning: {inline(parsed.reason, 300)}\n\n{USAGE}")
            return
        if isinstance(parsed, VerbCommand) and parsed.verb == "help":
            await ack(response_type="ephemeral", text=USAGE)
            return
        await ack()
        workspace = workspace_of(context, body)
        user_id = command.get("user_id")
        reply = Reply.of(env.deps.http, client, body)
        if isinstance(parsed, LookupCommand):
            lookup = make_job(
                "lookup",
                body,
                workspace,
                bool(context.is_enterprise_install),
                execution_id=parsed.execution_id,
                linked_account_id=parsed.linked_account_id,
            )
            env.tasks.spawn(submit(env, lookup, client), "lookup")
        elif parsed.verb == "status":
            env.tasks.spawn(_status(env, reply, workspace), "status")
        elif parsed.verb == "connect":
            env.tasks.spawn(_connect(client, reply, command.get("trigger_id"), user_id), "connect")
        elif parsed.verb == "disconnect":
            env.tasks.spawn(_ask_disconnect(client, reply, user_id), "disconnect")


@job("lookup")
async def _lookup_job(
    env: SlackEnv, job_data: dict[str, Any], reply: Reply, client: AsyncWebClient, workspace: Workspace
) -> None:
    args = job_data["args"]
    await _lookup(env, reply, workspace, LookupCommand(args["execution_id"], args.get("linked_account_id")))


async def _lookup(env: SlackEnv, reply: Reply, workspace: Workspace, cmd: LookupCommand) -> None:
    outcome = await fetch(env, workspace, cmd.execution_id, cmd.linked_account_id)
    if outcome.result is None:
        await reply.send(response_type="ephemeral", text=outcome.error)
        return
    card = card_of(env, outcome.result, shareable=True)
    await reply.send(response_type="ephemeral", text=card.text, blocks=card.blocks)


async def _status(env: SlackEnv, reply: Reply, workspace: Workspace) -> None:
    try:
        resolved = await env.deps.resolver.resolve(workspace)
    except (NotConnected, CorruptCredentials, StoreUnavailable) as exc:
        await reply.send(response_type="ephemeral", text=describe_error(exc))
        return
    creds = resolved.credentials
    kind = "session token" if creds.kind is AuthKind.SESSION_TOKEN else "API key"
    masked = mask_secret(creds.secret.get_secret_value())
    if resolved.record is None:
        text = (
            f":electric_plug: Using the operator's fallback {kind} `{masked}` for "
            f"linked account *{inline(creds.linked_account_id or '–', 120)}*. "
            "A workspace admin can run `/execution connect` to use this workspace's own."
        )
    else:
        record = resolved.record
        where = "this workspace" if resolved.scope is Scope.TEAM else "your Enterprise Grid org"
        who = (
            f"<@{inline(record.connected_by, 40)}>"
            if record.connected_by and record.connected_by != "cli"
            else "an operator (CLI)"
        )
        lines = [
            f":white_check_mark: Refold is connected for {where} with {kind} `{masked}`.",
            f"Default linked account: *{inline(record.linked_account_id or '–', 120)}*",
            f"Base URL: {inline(creds.base_url, 120)}",
            f"Connected by {who} on {record.connected_at.strftime('%Y-%m-%d %H:%M UTC')}.",
        ]
        if record.session_expires_at:
            lines.append(f"Session token expires {record.session_expires_at.strftime('%Y-%m-%d %H:%M UTC')}.")
        text = "\n".join(lines)
    await reply.send(response_type="ephemeral", text=text)


async def _connect(client: AsyncWebClient, reply: Reply, trigger_id: str | None, user_id: str | None) -> None:
    if not await is_workspace_admin(client, user_id):
        await reply.send(response_type="ephemeral", text=ADMIN_ONLY)
        return
    await connect_modal.open_modal(client, reply, trigger_id)


async def _ask_disconnect(client: AsyncWebClient, reply: Reply, user_id: str | None) -> None:
    if not await is_workspace_admin(client, user_id):
        await reply.send(response_type="ephemeral", text=ADMIN_ONLY)
        return
    await reply.send(response_type="ephemeral", **connect_modal.disconnect_prompt())
