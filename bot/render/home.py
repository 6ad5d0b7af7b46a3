"""The App Home tab: connection, recent lookups, followed runs, alert routes. Pure.

Whatever the counts, the view stays inside Block Kit's limits: a Home view takes at most 100 blocks,
and this one uses at most 12 + MAX_ROUTES (the lists are one section each, clipped to 3000 characters).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.render import block_kit as kit
from bot.render.alerts import RouteView, filters_text, snooze_line
from bot.render.follow import FollowLine
from bot.render.incident import IncidentFacts, incidents_list
from bot.render.status import ConnectionFacts, connection_status
from bot.render.text import clip, format_duration_ms, inline, plural, status_emoji

HOME_CONNECT_ACTION = "home_connect"
HOME_ROUTE_OFF_ACTION = "home_route_off"
HOME_ACTIONS = (HOME_CONNECT_ACTION, HOME_ROUTE_OFF_ACTION)
MAX_LOOKUPS = 10
MAX_FOLLOWS = 10
MAX_ROUTES = 20
MAX_BLOCKS = 100
SECTION_CHARS = 2900


@dataclass(frozen=True)
class RecentView:
    execution_id: str
    name: str | None
    status: str | None
    user_id: str | None
    at: datetime


@dataclass(frozen=True)
class HomeFacts:
    connection: ConnectionFacts | None
    connection_problem: str | None  # why there is no connection to show
    recent: Sequence[RecentView]
    follows: Sequence[FollowLine]
    routes: Sequence[tuple[str, RouteView]]  # (route ID, route)
    is_admin: bool
    incidents: Sequence[tuple[str, IncidentFacts]] = ()  # (channel ID, incident), open ones


def home_view(facts: HomeFacts, now: datetime) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = [kit.header("Refold Executions")]
    if facts.connection is not None:
        blocks.append(kit.section(connection_status(facts.connection)))
    else:
        blocks.append(
            kit.section(f":electric_plug: {facts.connection_problem or 'Refold is not connected.'}")
        )
    if facts.is_admin:
        label = "Reconnect Refold" if facts.connection is not None else "Connect Refold"
        blocks.append({"type": "actions", "elements": [kit.button(label, HOME_CONNECT_ACTION, "connect")]})
    blocks += [kit.DIVIDER, kit.header("Recent lookups"), kit.section(_recent(facts.recent, now))]
    blocks += [
        kit.DIVIDER,
        kit.header("Followed runs"),
        kit.section(_follows(facts.follows, now.timestamp())),
    ]
    blocks += [kit.DIVIDER, kit.header("Open incidents"), kit.section(incidents_list(facts.incidents, now))]
    blocks += [kit.DIVIDER, kit.header("Alert routes")]
    if not facts.routes:
        blocks.append(kit.section("No channel gets Refold alerts. Run `/execution alerts on` in one."))
    for route_id, route in facts.routes[:MAX_ROUTES]:
        text = (
            f"<#{inline(route.channel_id, 20)}>: "
            f"{filters_text(route.events, route.environment, route.workflow)}"
            + (f"\n{route.digest}" if route.digest else "")
            + "".join(f"\n{snooze_line(s)}" for s in route.snoozes[:5])
        )
        button = _off_button(route_id, route.channel_id) if facts.is_admin else None
        blocks.append(kit.section(text, accessory=button))
    if len(facts.routes) > MAX_ROUTES:
        more = len(facts.routes) - MAX_ROUTES
        blocks.append(
            kit.context(f"…and {plural(more, 'more channel')}: `/execution alerts list` shows all.")
        )
    hint = (
        "Add a channel with `/execution alerts on` in it."
        if facts.is_admin
        else "Workspace admins can connect Refold and manage alert routes."
    )
    blocks.append(kit.context(f"{hint} `/execution help` lists every command."))
    return {"type": "home", "blocks": blocks[:MAX_BLOCKS]}


def _recent(recent: Sequence[RecentView], now: datetime) -> str:
    if not recent:
        return "_No lookups yet. Type `/execution <execution_id>`._"
    rows = []
    for entry in recent[:MAX_LOOKUPS]:
        name = f" *{inline(entry.name, 60)}*" if entry.name else ""
        status = f" {status_emoji(entry.status)} {inline(entry.status, 20)}" if entry.status else ""
        who = f" by <@{inline(entry.user_id, 30)}>" if entry.user_id else ""
        ago = format_duration_ms(max(0.0, (now - entry.at).total_seconds()) * 1000)
        rows.append(f"• `{inline(entry.execution_id, 40)}`{name}{status}{who} · {ago} ago")
    return clip("\n".join(rows), SECTION_CHARS)


def _follows(follows: Sequence[FollowLine], now: float) -> str:
    if not follows:
        return "_No runs are being followed. Press *Follow* on a running execution's card._"
    rows = []
    for line in follows[:MAX_FOLLOWS]:
        name = f" *{inline(line.name, 60)}*" if line.name else ""
        status = f" · {inline(line.status, 20)}" if line.status else ""
        who = f" for <@{inline(line.requester, 30)}>" if line.requester else ""
        since = format_duration_ms(max(0.0, now - line.started_at) * 1000)
        rows.append(f"• `{inline(line.execution_id, 40)}`{name}{status}{who} · for {since}")
    if len(follows) > MAX_FOLLOWS:
        rows.append(f"…and {plural(len(follows) - MAX_FOLLOWS, 'more')}: `/execution following` lists all.")
    return clip("\n".join(rows), SECTION_CHARS)


def _off_button(route_id: str, channel_id: str) -> dict[str, Any]:
    button = kit.button("Turn off", HOME_ROUTE_OFF_ACTION, route_id)
    button["style"] = "danger"
    return kit.confirmed(
        button,
        "Turn off alerts?",
        f"<#{inline(channel_id, 20)}> stops getting Refold alerts.",
        "Turn off",
        "Keep",
    )
