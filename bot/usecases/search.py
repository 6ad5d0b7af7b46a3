"""`/execution search`: one page of a linked account's executions from Refold's list, filtered.

The filters become the list endpoint's own query parameters (openapi.yaml, `listExecutions`), so
Refold does the filtering; the call goes through the key's rate limit like any other.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, assert_never

from cachetools import TTLCache
from pydantic import ValidationError

from bot.errors import BotError
from bot.parse import SearchCommand, SearchSource
from bot.refold.client import RefoldClient
from bot.refold.errors import MalformedResponse
from bot.refold.ids import InvalidExecutionId, normalize_execution_id
from bot.refold.models import Execution
from bot.usecases.workspace import CredentialResolver, Workspace

log = logging.getLogger(__name__)

PAGE_SIZE = 10


def source_parameter(source: SearchSource) -> str:
    """Refold's names for the trigger sources (openapi.yaml's enum)."""
    match source:
        case "event":
            return "Event"
        case "schedule":
            return "SCHEDULE"
        case "api":
            return "API_CALL"
        case _:
            assert_never(source)


def query_of(search: SearchCommand, now: datetime) -> dict[str, str]:
    """The list endpoint's query parameters for these filters (page and limit apart)."""
    params: dict[str, str] = {}
    if search.status is not None:
        params["status"] = search.status.upper()
    if search.workflow is not None:
        try:
            params["workflow_id"] = normalize_execution_id(search.workflow)  # workflow IDs look the same
        except InvalidExecutionId:
            params["workflow_name"] = search.workflow
    if search.since_seconds is not None:
        start = (now - timedelta(seconds=search.since_seconds)).astimezone(UTC)
        params["start_date"] = start.isoformat(timespec="seconds").replace("+00:00", "Z")
    if search.source is not None:
        params["execution_source"] = source_parameter(search.source)
    return params


@dataclass(frozen=True)
class SearchPage:
    rows: list[Execution]
    page: int
    has_next: bool
    total: int | None
    account: str | None  # whose runs these are (the workspace's default when none was asked for)


@dataclass(frozen=True)
class LastSuccess:
    execution_id: str | None  # None: Refold lists no completed run of the workflow for the account
    at: datetime | None


# Cached per workflow and account this long; an alert waits at most LAST_SUCCESS_BUDGET for it.
LAST_SUCCESS_SECONDS = 600
LAST_SUCCESS_BUDGET = 5.0


class ExecutionSearch:
    def __init__(self, resolver: CredentialResolver, client: RefoldClient) -> None:
        self._resolver = resolver
        self._client = client
        self._last: TTLCache[tuple[str, str, str], LastSuccess] = TTLCache(
            maxsize=10_000, ttl=LAST_SUCCESS_SECONDS
        )

    async def last_success(self, workspace: Workspace, workflow_id: str, account: str) -> LastSuccess | None:
        """The workflow's latest completed run for the account; None when Refold could not say in
        time (not shown: a failed card is worth more on time than with this line)."""
        key = (workspace.label, workflow_id, account)
        cached = self._last.get(key)
        if cached is not None:
            return cached
        try:
            async with asyncio.timeout(LAST_SUCCESS_BUDGET):
                creds = (await self._resolver.resolve(workspace)).credentials
                data = await self._client.list_executions(
                    creds,
                    limit=1,
                    linked_account_id=account,
                    filters={"status": "COMPLETED", "workflow_id": workflow_id},
                )
        except (BotError, TimeoutError) as exc:
            log.info("the last success could not be read (%s); left out", getattr(exc, "kind", "timeout"))
            return None
        docs = data.get("docs")
        found = LastSuccess(None, None)
        if isinstance(docs, list) and docs:
            try:
                run = Execution.model_validate(docs[0])
                found = LastSuccess(run.id, run.updated_at or run.created_at)
            except ValidationError:
                log.info("Refold's last completed run could not be read; left out")
                return None
        self._last[key] = found
        return found

    async def search(
        self, workspace: Workspace, search: SearchCommand, page: int, now: datetime
    ) -> SearchPage:
        """Raises BotError (not connected, Refold refusing or away) for the surface to put in words."""
        creds = (await self._resolver.resolve(workspace)).credentials
        account = search.account or creds.linked_account_id
        data = await self._client.list_executions(
            creds, limit=PAGE_SIZE, page=page, linked_account_id=search.account, filters=query_of(search, now)
        )
        docs: Any = data.get("docs")
        if not isinstance(docs, list):
            raise MalformedResponse("Refold's execution list has no docs")
        rows = []
        for doc in docs[:PAGE_SIZE]:
            try:
                rows.append(Execution.model_validate(doc))
            except ValidationError:
                log.info("an execution in Refold's list could not be read; left out")
        total = data.get("totalDocs")
        return SearchPage(
            rows=rows,
            page=page,
            has_next=bool(data.get("hasNextPage")),
            total=total if isinstance(total, int) and not isinstance(total, bool) else None,
            account=account,
        )
