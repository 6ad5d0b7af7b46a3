"""What a job handler works with: the services, the reply, the answer-once bookkeeping, and the one
way to ask for another attempt."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn

import httpx
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import BotError, ErrorKind
from bot.jobs.kinds import AnyJob, Origin, Target
from bot.refold.place import watch_place
from bot.render import messages
from bot.render.blocks import Card, CardBudget, FollowMark, render_execution
from bot.render.errors import describe
from bot.slack.follow_records import FollowKit, Scheduler
from bot.slack.reply import Reply
from bot.slack.web_api import DELIVERED, Delivery
from bot.store.deliveries import Deliveries
from bot.store.errors import StoreUnavailable
from bot.usecases.actions import ExecutionActions
from bot.usecases.alerts import AlertService
from bot.usecases.lookup import ExecutionLookup, LookupResult
from bot.usecases.search import ExecutionSearch
from bot.usecases.workspace import Workspace

log = logging.getLogger(__name__)

# A lookup not answered this long after the person asked shows why it waits, until its card comes;
# one that starts late (a long job queue) still gets a moment to answer before that.
WAITING_NOTE_SECONDS = 3.0
WAITING_NOTE_MIN_SECONDS = 0.5


class RetryLater(Exception):
    """A transient failure (Refold, Redis or Slack briefly away) on an attempt that is not the last.

    Raised through `JobContext.retry` and `retry_unless_final`; the runner turns it into saq's retry."""


@dataclass(frozen=True)
class Outcome:
    result: LookupResult | None
    error: str | None


@dataclass
class JobContext:
    lookup: ExecutionLookup
    origin: Origin
    reply: Reply
    client: AsyncWebClient
    clock: Callable[[], datetime]
    interaction: str
    # Queued jobs may run again after a worker dies: then each answer is sent once (deliveries).
    deliveries: Deliveries | None
    final_attempt: bool
    http: httpx.AsyncClient
    follows: FollowKit
    actions: ExecutionActions
    alerts: AlertService
    search: ExecutionSearch
    scheduler: Scheduler  # the job queue: work for later (summaries, incident updates)
    dashboard_url: str | None = None
    first_attempt: bool = True

    @property
    def workspace(self) -> Workspace:
        return self.origin.workspace

    async def fetch(self, target: Target, *, patient: bool = False) -> Outcome:
        """`patient`: nobody is waiting on this answer (an alert), so a Refold rate limit that is
        spent means trying again later rather than answering "busy"."""
        try:
            result = await self.lookup.lookup(
                self.origin.workspace,
                target.execution_id,
                target.linked_account_id,
                user_id=self.origin.user_id or None,
            )
            return Outcome(result, None)
        except BotError as exc:
            detail = f": {exc}" if exc.transient else ""
            # Our own outage is an operator's problem; a user's wrong ID or Refold's 404 is not.
            level = logging.WARNING if exc.kind is ErrorKind.STORE_UNAVAILABLE else logging.INFO
            log.log(level, "lookup of %s failed: %s%s", target.execution_id[:40], type(exc).__name__, detail)
            if exc.transient or (patient and exc.kind is ErrorKind.BUSY):
                self.retry_unless_final(exc.kind.value)
            return Outcome(None, describe(exc))
        except Exception as exc:
            log.exception("lookup of %s failed unexpectedly", target.execution_id[:40])
            return Outcome(None, describe(exc))

    async def fetch_explaining_waits(self, target: Target, *, asked_at: float) -> tuple[Outcome, bool]:
        """Fetch; when the answer is not there WAITING_NOTE_SECONDS after the person asked, show a
        placeholder that says why (the lookup's place in its workspace's Refold line).

        Returns the outcome and whether a placeholder shows, which the answer must then replace.
        The fetch runs in this task and a timer starts the placeholder: no task hop before the
        Refold call, which under load is a wait behind every other ready task.
        """
        now = time.time()
        delay = max(WAITING_NOTE_MIN_SECONDS, (asked_at or now) + WAITING_NOTE_SECONDS - now)
        loop = asyncio.get_running_loop()
        note: asyncio.Task[Delivery] | None = None
        with watch_place() as place:

            def show_placeholder() -> None:
                nonlocal note
                text = messages.lookup_waiting(
                    target.execution_id, place.ahead, with_refold=place.with_refold
                )
                note = loop.create_task(
                    self.once("waiting", lambda: self.reply.send(response_type="ephemeral", text=text))
                )

            timer = loop.call_later(delay, show_placeholder)
            try:
                outcome = await self.fetch(target)
            except BaseException:
                if note is not None:
                    note.cancel()
                raise
            finally:
                timer.cancel()
        if note is not None:
            return outcome, bool(await note)
        # An earlier run of this job may have shown one.
        if self.first_attempt or self.deliveries is None:
            return outcome, False
        return outcome, await self.deliveries.done(self.interaction, "waiting")

    def card(
        self,
        result: LookupResult,
        *,
        shareable: bool,
        budget: CardBudget | None = None,
        follow: FollowMark | None = None,
        rerun_of: str | None = None,
        note: str | None = None,
        banner: str | None = None,
    ) -> Card:
        return render_execution(
            result.execution,
            now=self.clock(),
            linked_account_id=result.linked_account_id,
            shareable=shareable,
            budget=budget,
            searched_from=result.searched_from,
            dashboard_url=self.dashboard_url,
            follow=follow,
            rerun_of=rerun_of,
            note=note,
            banner=banner,
        )

    async def once(
        self, part: str, send: Callable[[], Awaitable[Delivery]], *, across: str | None = None
    ) -> Delivery:
        """Send one part of the answer unless an earlier run of this job already did (or, with
        `across`, any job sharing that name: all the polls of one follow)."""
        owner = across or self.interaction
        if self.deliveries is not None:
            if await self.deliveries.done(owner, part):
                return DELIVERED
            # Jobs sharing `across` can get here together; asking "done?" would let each send.
            if across is not None and not await self.deliveries.claim(across, part, self.interaction):
                return DELIVERED  # another job sends it
        delivery = await send()
        if delivery and self.deliveries is not None:
            await self.deliveries.record(owner, part)
        return delivery

    async def answer(self, part: str, **message: Any) -> Delivery:
        """Answer; when Slack is briefly unable to take it and attempts remain, retry the job later."""
        return self.retry_if_transient(await self.once(part, lambda: self.reply.send(**message)))

    async def once_a_slot(self, make: Callable[[int], AnyJob], *, every: int, at: float, what: str) -> None:
        """Schedule `make(slot)` at the end of the `every`-second slot `at` falls in. Jobs are keyed by
        their slot, and the queue keeps one job per key: however often this is asked within one slot,
        the work runs once in it."""
        slot = math.ceil(at / every) * every
        try:
            await self.scheduler.enqueue(make(slot), at=slot)
        except StoreUnavailable:
            log.warning("could not schedule %s: Redis unavailable", what)

    def retry_unless_final(self, reason: str) -> None:
        """Ask saq for another attempt, unless this is the last one: then return, and the caller
        carries on with what it has (telling the person, or leaving the card as it is)."""
        if not self.final_attempt:
            self.retry(reason)

    def retry(self, reason: str) -> NoReturn:
        """Another attempt whatever the count: for work with nobody to tell (a poll, a summary),
        where saq's own attempt limit is the end."""
        raise RetryLater(reason) from None

    def retry_if_transient(self, delivery: Delivery) -> Delivery:
        """A Slack call that failed for a moment is tried again on the next attempt, if any."""
        if not delivery and delivery.transient:
            self.retry_unless_final("slack")
        return delivery
