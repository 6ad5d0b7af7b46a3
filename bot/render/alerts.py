"""Words about alert routes and the alerts they post. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from bot.parse import SnoozeFor
from bot.render import block_kit as kit
from bot.render.buttons import ALERT_SNOOZE_ACTION, encode_alert_snooze
from bot.render.text import ago, clip, escape_mrkdwn, format_time, inline, plain_label, plural

ALERTS_USAGE = (
    "*Send Refold alerts to this channel* (workspace admins)\n"
    "• `/execution alerts on [errored|completed|all] [env:production|test] [workflow:<name or id>]`: "
    "post Refold's workflow alerts here as live cards (default: errored runs of every workflow and "
    "environment); run it again to change the filters\n"
    "• `/execution alerts off`: stop them in this channel\n"
    "• `/execution alerts list`: every channel that gets alerts, and what is snoozed\n"
    "• `/execution alerts snooze workflow:<name or id>|account:<linked account> [for 1h|4h|24h|until-success]`: "
    "hold back this channel's alerts of a workflow or a linked account (default 1 h; workspace admins and "
    "the connect form's operators); they are counted and listed when it ends\n"
    "• `/execution alerts unsnooze workflow:…|account:…`: end it now\n"
    "• `/execution digest on [at 09:00] [tz:Europe/Berlin] [quiet:skip]`: a daily digest of this channel's "
    "alerts (`/execution digest` for more)"
)
SNOOZE_NOT_ALLOWED = (
    ":lock: Only workspace admins and owners, and the people the connect form names as operators, can "
    "snooze alerts. Ask one of them."
)
ALERTS_ADMIN_ONLY = (
    ":lock: Only workspace admins and owners can change where Refold alerts go. Ask one of them."
)
NO_ROUTE_HERE = "This channel gets no Refold alerts; nothing to turn off."
NO_ROUTES = "No channel in this workspace gets Refold alerts. Run `/execution alerts on` in one."
NEEDS_CHANNEL = ":warning: Run `/execution alerts on` in the channel that should get the alerts."


@dataclass(frozen=True)
class SnoozeView:
    kind: str  # workflow | account
    value: str
    by: str
    until: datetime
    until_success: bool
    held: int


@dataclass(frozen=True)
class RouteView:
    channel_id: str
    events: str  # errored | completed | all
    environment: str | None
    workflow: str | None
    registered: bool  # subscribed in Refold by the bot
    created_by: str | None
    snoozes: Sequence[SnoozeView] = ()
    digest: str | None = None  # its setting, in words


def snoozed_what(kind: str, value: str) -> str:
    return f"{'workflow' if kind == 'workflow' else 'linked account'} *{escape_mrkdwn(clip(value, 80))}*"


def snooze_line(snooze: SnoozeView) -> str:
    """What, who, until when, how many held back."""
    until = (
        f"until a run succeeds (at most until {format_time(snooze.until)})"
        if snooze.until_success
        else f"until {format_time(snooze.until)}"
    )
    return (
        f":zzz: {snoozed_what(snooze.kind, snooze.value)} snoozed by <@{inline(snooze.by, 30)}> {until}: "
        f"{plural(snooze.held, 'alert')} held back"
    )


def snoozed(snooze: SnoozeView, channel_id: str) -> str:
    return (
        f"{snooze_line(snooze)}. Its alerts in <#{inline(channel_id, 20)}> are counted, not posted; when it ends, "
        "one line there says how many came, with their runs in its thread. "
        f"`/execution alerts unsnooze {snooze.kind}:{inline(snooze.value, 80)}` ends it now."
    )


def not_snoozed(kind: str, value: str) -> str:
    return f"Nothing to end: {snoozed_what(kind, value)} is not snoozed in this channel."


def unsnoozing(kind: str, value: str) -> str:
    return f":bell: Ending the snooze of {snoozed_what(kind, value)}: its alerts are posted again."


def snooze_ended(
    kind: str, value: str, held: int, reason: str, ended_by: str | None, success_of: str | None
) -> str:
    """The one line that ends a snooze in its channel."""
    what = snoozed_what(kind, value)
    came = f"{plural(held, 'alert')} arrived while it was on" if held else "no alert arrived while it was on"
    match reason:
        case "early":
            by = f" by <@{inline(ended_by, 30)}>" if ended_by else ""
            head = f":bell: Snooze of {what} ended early{by}"
        case "success":
            head = f":bell: Snooze of {what} ended: a run succeeded" + (
                f" (`{inline(success_of, 40)}`)" if success_of else ""
            )
        case _:
            head = f":bell: Snooze of {what} ended"
    listed = " (their runs are in this thread)" if held else ""
    return f"{head}: {came}{listed}."


def filters_text(events: str, environment: str | None, workflow: str | None) -> str:
    what = {"errored": "errored runs", "completed": "completed runs", "all": "errored and completed runs"}
    where = f"*{inline(environment, 20)}*" if environment else "every environment"
    which = f"workflow *{inline(workflow, 80)}*" if workflow else "every workflow"
    return f"{what.get(events, events)} · {where} · {which}"


def route_line(route: RouteView) -> str:
    via = "subscribed in Refold" if route.registered else "webhook added by hand"
    line = f"<#{inline(route.channel_id, 20)}>: {filters_text(route.events, route.environment, route.workflow)} · {via}"
    digest = f"\n   {route.digest}" if route.digest else ""
    return line + digest + "".join(f"\n   {snooze_line(s)}" for s in route.snoozes[:10])


def routes_list(routes: Sequence[RouteView]) -> str:
    if not routes:
        return NO_ROUTES
    lines = [f"• {route_line(r)}" for r in routes[:50]]
    more = f"\n…and {plural(len(routes) - 50, 'more channel')}" if len(routes) > 50 else ""
    return f"*Channels that get Refold alerts* ({len(routes)})\n" + "\n".join(lines) + more


def turned_on(
    route: RouteView,
    route_id: str,
    *,
    created: bool,
    url: str | None,
    registered: bool,
    register_error: str | None,
    signed: bool,
    posted_here: bool,
) -> str:
    verb = "are on" if created else "now post"
    lines = [
        f":white_check_mark: Refold alerts {verb} in <#{inline(route.channel_id, 20)}>: "
        f"{filters_text(route.events, route.environment, route.workflow)}."
    ]
    if registered:
        lines.append("The webhook is subscribed in Refold: nothing else to do.")
    elif url is not None:
        lines.append(
            f":warning: Refold would not subscribe the webhook ({register_error}). Add it by hand in the "
            f"Refold Console, *Developer > Webhooks*: URL `{url}`, events *Workflow Errored*, "
            "*Workflow Completed* and *Connection Expired*."
        )
    else:
        lines.append(
            "Add the webhook in the Refold Console, *Developer > Webhooks*, with the events "
            "*Workflow Errored*, *Workflow Completed* and *Connection Expired*, and this URL, with "
            "your bot's public address in front (or set `PUBLIC_URL` and the bot subscribes it itself):\n"
            f"`<your bot's URL>/refold/webhooks/{inline(route_id, 40)}`"
        )
    if not signed:
        lines.append(
            "_This workspace is connected with a session token, so deliveries cannot be checked against "
            "an API key's signature: keep the webhook URL private._"
        )
    if not posted_here:
        lines.append(
            ":warning: I am not in this channel, so alerts cannot arrive here yet: invite me with "
            "`/invite @refold-executions`. Nothing else needs doing."
        )
    return "\n".join(lines)


def turned_off(channel_id: str, unregister_error: str | None) -> str:
    text = f":no_bell: Refold alerts are off in <#{inline(channel_id, 20)}>."
    if unregister_error:
        text += (
            f"\n:warning: Refold would not delete the webhook subscription ({unregister_error}); "
            "remove it in the Refold Console, *Developer > Webhooks*. Its deliveries are refused meanwhile."
        )
    return text


def announcement(who: str | None, route: RouteView) -> str:
    by = f"<@{inline(who, 30)}> turned on " if who else ""
    return (
        f":bell: {by}Refold alerts for this channel: "
        f"{filters_text(route.events, route.environment, route.workflow)}. Each arrives as a live card."
    )


@dataclass(frozen=True)
class LastSuccessFacts:
    execution_id: str | None  # None: no completed run of the workflow for the account
    at: datetime | None
    now: datetime


def last_success_line(facts: LastSuccessFacts) -> str:
    if facts.execution_id is None:
        return "Last success: none for this workflow and account"
    if facts.at is None:
        return f"Last success: `{inline(facts.execution_id, 40)}`"
    return f"Last success: {ago(facts.at, facts.now)} (`{inline(facts.execution_id, 40)}`)"


def alert_banner(
    event: str,
    linked_account_id: str | None,
    repeat: RepeatFacts | None = None,
    last_success: LastSuccessFacts | None = None,
) -> str:
    account = f" · linked account *{inline(linked_account_id, 120)}*" if linked_account_id else ""
    history = f" · {repeat_line(repeat)}" if repeat is not None else ""
    success = f" · {last_success_line(last_success)}" if last_success is not None else ""
    return f":rotating_light: Refold alert: *{inline(event, 40)}*{account}{history}{success}"


@dataclass(frozen=True)
class RepeatFacts:
    """Where a failure stands among the route's earlier deliveries of its workflow and account."""

    workflow: str
    account: str
    failures_in_window: int  # in the last 7 days, this one included
    in_a_row: int  # failures since the last success seen, this one included
    failing_since: datetime  # the first of those
    last_success: datetime | None
    sees_successes: bool  # the route gets Workflow Completed too, so "in a row" is known


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def repeat_line(facts: RepeatFacts) -> str:
    """First failure or repeat: "first failure of *Nightly sync* for *acme* in 7 days", or "failing
    since 12:02 for *acme*: 5th in a row"."""
    workflow, account = f"*{inline(facts.workflow, 80)}*", f"*{inline(facts.account, 80)}*"
    if facts.failures_in_window <= 1 and facts.in_a_row <= 1:
        return f"first failure of {workflow} for {account} in 7 days"
    if not facts.sees_successes:
        return (
            f"{ordinal(facts.failures_in_window)} failure of {workflow} for {account} in 7 days "
            f"(the first at {format_time(facts.failing_since)})"
        )
    if facts.in_a_row >= 2:
        return f"failing since {format_time(facts.failing_since)} for {account}: {ordinal(facts.in_a_row)} in a row"
    succeeded = f" since its success at {format_time(facts.last_success)}" if facts.last_success else ""
    return (
        f"first failure of {workflow} for {account}{succeeded} "
        f"({plural(facts.failures_in_window, 'failure')} in 7 days)"
    )


def unfetched_alert(
    event: str, instance_id: str, workflow_name: str | None, linked_account_id: str | None, reason: str
) -> str:
    name = f"*{inline(workflow_name, 120)}*" if workflow_name else "A workflow"
    account = f" for linked account *{inline(linked_account_id, 120)}*" if linked_account_id else ""
    return (
        f":rotating_light: Refold alert: {name}{account}: *{inline(event, 40)}* "
        f"(`{inline(instance_id, 40)}`). The run could not be shown: {clip(reason, 500)} "
        f"Try `/execution {inline(instance_id, 40)}` in a moment."
    )


def connection_expired(app: str | None, linked_account_id: str | None, environment: str | None) -> str:
    what = f"*{inline(app, 60)}*" if app else "an app"
    account = f"*{inline(linked_account_id, 120)}*" if linked_account_id else "a linked account"
    env = f" ({inline(environment, 20)})" if environment else ""
    return (
        f":electric_plug: Refold connection expired: {what} for linked account {account}{env}. "
        "Its workflows will fail until the customer reconnects; ask them to re-authenticate."
    )


def not_in_channel(channel_id: str) -> str:
    return (
        f":warning: A Refold alert could not be posted in <#{inline(channel_id, 20)}>: I am not a member "
        "of that channel. Invite me there with `/invite @refold-executions`, or turn its alerts off with "
        "`/execution alerts off`. (I'll say this once.)"
    )


def _for(length: SnoozeFor) -> str:
    return "until a run succeeds" if length == "until-success" else f"for {length[:-1]} h"


def alert_snooze_menu(workflow: str | None, account: str | None) -> dict[str, Any] | None:
    """A failed run's alert card's menu: snooze its workflow (1 h, 4 h, until a run succeeds) or its
    linked account (4 h, until a run succeeds) in the card's channel. None when neither fits."""
    menu: list[tuple[Literal["workflow", "account"], str | None, tuple[SnoozeFor, ...]]] = [
        ("workflow", workflow, ("1h", "4h", "until-success")),
        ("account", account, ("4h", "until-success")),
    ]
    options = []
    for kind, value, lengths in menu:
        for length in lengths if value else ():
            encoded = encode_alert_snooze(kind, value or "", length)
            if encoded is not None:
                options.append(kit.option(f"{plain_label(f'Snooze {value}', 50)} {_for(length)}", encoded))
    if not options:
        return None
    return kit.actions(
        {"type": "overflow", "action_id": ALERT_SNOOZE_ACTION, "options": options},
        block_id="alert_snooze",
    )
