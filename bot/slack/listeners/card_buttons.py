"""Buttons on the execution card: Refresh, Share, Follow/Unfollow, Rerun and Stop; and Show card on a
run listed in an incident's thread or a search answer.

Each acks at once, decodes its value (untrusted: re-validated) and hands the work to a job.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck

from bot.jobs.kinds import (
    AnyJob,
    FollowJob,
    LookupJob,
    RefreshJob,
    RerunJob,
    SearchJob,
    ShareJob,
    ShownCard,
    StopJob,
    Target,
    UnfollowJob,
)
from bot.render.buttons import (
    FOLLOW_ACTION,
    OPEN_ACTION,
    REFRESH_ACTION,
    RERUN_ACTION,
    SEARCH_NEXT_ACTION,
    SHARE_ACTION,
    SHOW_RUN_ACTION,
    STOP_ACTION,
    UNFOLLOW_ACTION,
    decode_follow,
    decode_search,
    decode_target,
)
from bot.slack.dispatch import Dispatcher
from bot.slack.listeners.presses import on_press
from bot.slack.payloads import Interaction
from bot.slack.responder import Responder

CardJob = TypeVar("CardJob", FollowJob, UnfollowJob, RerunJob, StopJob)


def register(app: AsyncApp, dispatcher: Dispatcher, responder: Responder) -> None:
    _button(app, REFRESH_ACTION, dispatcher, responder, _refresh_job)
    _button(app, SHARE_ACTION, dispatcher, responder, _share_job)
    _button(app, FOLLOW_ACTION, dispatcher, responder, _on_card(FollowJob))
    _button(app, UNFOLLOW_ACTION, dispatcher, responder, _on_card(UnfollowJob))
    _button(app, RERUN_ACTION, dispatcher, responder, _on_card(RerunJob))
    _button(app, STOP_ACTION, dispatcher, responder, _on_card(StopJob))
    # A run listed in an incident's thread or a search answer: its card, privately, where it was pressed.
    _button(app, SHOW_RUN_ACTION, dispatcher, responder, _show_job)

    on_press(
        app, SEARCH_NEXT_ACTION, dispatcher, responder, lambda i: decode_search(i.action_value), _next_page
    )

    @app.action(OPEN_ACTION)
    async def opened_in_refold(ack: AsyncAck) -> None:
        # A link button: Slack opens the page itself and only tells the app, which has nothing to add.
        await ack()


def _refresh_job(interaction: Interaction, target: Target) -> RefreshJob:
    message = interaction.message
    blocks = message.get("blocks")
    # Kept so that a failed refresh can leave the last good card in place, with a note.
    shown = (
        ShownCard(text=str(message.get("text") or ""), blocks=blocks)
        if isinstance(blocks, list) and blocks
        else None
    )
    return RefreshJob(
        origin=interaction.origin,
        reply=interaction.reply_target(ephemeral=interaction.is_ephemeral),
        interaction=interaction.key,
        target=target,
        shown=shown,
        follow_id=_followed(interaction),
    )


def _followed(interaction: Interaction) -> str | None:
    """The follow a followed card's button names, if any."""
    found = decode_follow(interaction.action_value)
    return found[1] if found else None


def _on_card(kind: type[CardJob]) -> Callable[[Interaction, Target], CardJob]:
    """Follow, Unfollow, Rerun and Stop act on the clicked card: its thread, and its follow (the one a
    followed card's button names, else the card's own)."""

    def make(interaction: Interaction, target: Target) -> CardJob:
        return kind(
            origin=interaction.origin,
            reply=interaction.reply_target(ephemeral=interaction.is_ephemeral, in_thread=True),
            interaction=interaction.key,
            target=target,
            follow_id=_followed(interaction) or interaction.card_follow_id,
        )

    return make


def _show_job(interaction: Interaction, target: Target) -> LookupJob:
    return LookupJob(
        origin=interaction.origin,
        reply=interaction.reply_target(in_thread=True),
        interaction=interaction.key,
        target=target,
        asked_at=time.time(),
    )


def _share_job(interaction: Interaction, target: Target) -> ShareJob:
    return ShareJob(
        origin=interaction.origin,
        reply=interaction.reply_target(),
        interaction=interaction.key,
        target=target,
    )


def _button(
    app: AsyncApp,
    action_id: str,
    dispatcher: Dispatcher,
    responder: Responder,
    make_job: Callable[[Interaction, Target], AnyJob],
) -> None:
    """A card button: its value names the execution; the lookup behind it runs as a job."""
    on_press(app, action_id, dispatcher, responder, _target, make_job)


def _next_page(interaction: Interaction, found: tuple[str, int]) -> SearchJob:
    query, page = found
    return SearchJob(
        origin=interaction.origin,
        reply=interaction.reply_target(),
        interaction=interaction.key,
        query=query,
        page=page,
    )


def _target(interaction: Interaction) -> Target | None:
    found = decode_target(interaction.action_value)
    if found is None:
        return None
    return Target(execution_id=found.execution_id, linked_account_id=found.linked_account_id)
