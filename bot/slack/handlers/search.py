"""`/execution search` and its Next page: Refold's list, answered privately to whoever asked."""

from __future__ import annotations

import logging

from bot.errors import BotError
from bot.jobs.kinds import SearchJob
from bot.parse import InvalidCommand, SearchCommand, parse_search
from bot.refold.models import Execution
from bot.render import messages
from bot.render.errors import describe
from bot.render.search import SearchFacts, SearchRow, search_blocks, search_text
from bot.slack.handlers.context import JobContext

log = logging.getLogger(__name__)


def _row(execution: Execution) -> SearchRow:
    took = execution.total_node_time_ms
    if took is None and execution.created_at and execution.updated_at:
        took = max(0, int((execution.updated_at - execution.created_at).total_seconds() * 1000))
    return SearchRow(execution.id or "?", execution.name, execution.status, execution.created_at, took)


def _filters(search: SearchCommand) -> list[tuple[str, str]]:
    named = [("status", search.status), ("workflow", search.workflow), ("since", search.since)]
    return [(name, value) for name, value in [*named, ("source", search.source)] if value is not None]


async def run_search(ctx: JobContext, job: SearchJob) -> None:
    search = parse_search(job.query)
    if isinstance(search, InvalidCommand):  # a Next page button whose value was tampered with
        await ctx.answer(
            "results", response_type="ephemeral", replace_original=False, text=messages.DAMAGED_BUTTON
        )
        return
    try:
        page = await ctx.search.search(ctx.workspace, search, job.page, ctx.clock())
    except BotError as exc:
        log.info("a search failed: %s", exc.kind.value)
        if exc.transient:
            ctx.retry_unless_final(exc.kind.value)
        await ctx.answer(
            "results",
            response_type="ephemeral",
            replace_original=False,
            text=f"Search failed. {describe(exc)}",
        )
        return
    facts = SearchFacts(
        filters=_filters(search),
        query=job.query,
        account=page.account,
        rows=[_row(row) for row in page.rows],
        page=page.page,
        has_next=page.has_next,
        total=page.total,
    )
    now = ctx.clock()
    await ctx.answer(
        "results",
        response_type="ephemeral",
        # Next page replaces the page it was pressed on.
        replace_original=job.page > 1,
        text=search_text(facts, now),
        blocks=search_blocks(facts, now),
    )
