"""Rerun and Stop: one Refold call each, recorded in the workspace's audit log, sent at most once.

A queued job can run twice (its worker died after the call but before saq recorded the job done), so
each action is marked done under its interaction right after Refold accepts it, and a second run
returns the first one's result instead of calling again. Permission is the caller's business: this
layer acts for whoever the Slack surface let through.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

import redis.asyncio as aioredis

from bot.errors import BotError, ErrorKind
from bot.refold.client import RefoldClient
from bot.refold.ids import normalize_execution_id, normalize_linked_account
from bot.store import keys
from bot.store.audit import AuditEntry, AuditLog
from bot.store.errors import StoreUnavailable
from bot.store.redis import redis_errors
from bot.usecases.workspace import CredentialResolver, Workspace

log = logging.getLogger(__name__)

DONE_SECONDS = 3600
# Written before Refold is asked to rerun, replaced by the new run's ID once it answers: a job run
# again after its worker died mid-call (or after Redis failed to take the answer) finds it and does not
# ask again, since Refold may have started the run. The chaos soak met one run rerun twice that way.
ASKED = "?"

# Refold refused these before starting anything, so the run may be tried again.
NOT_STARTED = frozenset(
    {
        ErrorKind.NOT_FOUND,
        ErrorKind.UNAUTHORIZED,
        ErrorKind.REJECTED,
        ErrorKind.RATE_LIMITED,
        ErrorKind.BUSY,
        ErrorKind.NOT_CONNECTED,
        ErrorKind.SESSION_EXPIRED,
        ErrorKind.CORRUPT_CREDENTIALS,
        ErrorKind.INVALID_EXECUTION_ID,
        ErrorKind.INVALID_LINKED_ACCOUNT,
        ErrorKind.DISALLOWED_BASE_URL,
        ErrorKind.INVALID_SECRET,
        ErrorKind.STORE_UNAVAILABLE,
    }
)


@dataclass(frozen=True)
class Operators:
    """Who, besides workspace admins and owners, may rerun and stop (from the connect modal)."""

    users: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()


class RerunUnconfirmed(Exception):
    """Refold was asked to rerun for this click before, and its answer never got recorded."""


@dataclass(frozen=True)
class ActionRequest:
    workspace: Workspace
    execution_id: str
    linked_account_id: str | None
    who: str
    key: str  # one per click: a re-run job with the same key does not act again


class ExecutionActions:
    def __init__(
        self, resolver: CredentialResolver, client: RefoldClient, audit: AuditLog, redis: aioredis.Redis
    ) -> None:
        self._resolver = resolver
        self._client = client
        self._audit = audit
        self._redis = redis

    async def operators(self, workspace: Workspace) -> Operators:
        resolved = await self._resolver.resolve(workspace)
        record = resolved.record
        if record is None:
            return Operators()  # the operator's env credentials: admins only
        return Operators(tuple(record.operator_users), tuple(record.operator_groups))

    async def rerun(self, request: ActionRequest) -> str:
        """The new execution's ID."""
        name = f"rerun:{request.key}"
        done = await self._done(name)
        if done == ASKED:
            raise RerunUnconfirmed(request.execution_id)
        if done is not None:
            return done
        execution_id, account = self._checked(request)
        resolved = await self._resolver.resolve(request.workspace)
        if not await self._claim(name):
            raise RerunUnconfirmed(request.execution_id)
        try:
            new_id = await self._client.rerun_execution(resolved.credentials, execution_id, account)
        except BotError as exc:
            if exc.kind in NOT_STARTED:
                await self._forget(name)  # nothing started: a later attempt may ask again
            await self.record(request, "rerun", "failed", exc.kind.value)
            raise
        await self._mark(f"rerun:{request.key}", new_id)
        await self.record(request, "rerun", "ok", new_id)
        log.info("rerun of %s started %s", execution_id, new_id)
        return new_id

    async def rerun_made(self, request: ActionRequest) -> str | None:
        """The new execution's ID when this request's rerun was made (and recorded), else None."""
        done = await self._done(f"rerun:{request.key}")
        return None if done == ASKED else done

    async def stop(self, request: ActionRequest) -> None:
        if await self._done(f"stop:{request.key}") is not None:
            return
        execution_id, account = self._checked(request)
        resolved = await self._resolver.resolve(request.workspace)
        try:
            await self._client.stop_execution(resolved.credentials, execution_id, account)
        except BotError as exc:
            await self.record(request, "stop", "failed", exc.kind.value)
            raise
        await self._mark(f"stop:{request.key}", "ok")
        await self.record(request, "stop", "ok")
        log.info("stop of %s requested", execution_id)

    async def record(self, request: ActionRequest, action: str, result: str, detail: str = "") -> None:
        """Append to the audit log; a Redis failure here is logged, never lost silently."""
        entry = AuditEntry(
            at=datetime.now(UTC),
            who=request.who,
            action=action,
            execution_id=request.execution_id,
            result=result,
            detail=detail,
        )
        try:
            await self._audit.append(request.workspace.label, entry)
        except StoreUnavailable:
            log.warning(
                "audit entry not written (Redis unavailable): %s %s by %s: %s",
                action,
                request.execution_id,
                request.who,
                result,
            )

    async def latest(self, workspace: Workspace, count: int = 5) -> list[AuditEntry]:
        return await self._audit.latest(workspace.label, count)

    @staticmethod
    def _checked(request: ActionRequest) -> tuple[str, str | None]:
        account = normalize_linked_account(request.linked_account_id) if request.linked_account_id else None
        return normalize_execution_id(request.execution_id), account

    async def _done(self, name: str) -> str | None:
        try:
            async with redis_errors():
                value = await self._redis.get(keys.action_done(name))
        except StoreUnavailable:
            return None
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)

    async def _claim(self, name: str) -> bool:
        """Note that Refold is about to be asked; False when another run of this job got here first.
        Redis failing lets the call go (as `_done` does): the click is not lost."""
        try:
            async with redis_errors():
                return bool(await self._redis.set(keys.action_done(name), ASKED, nx=True, ex=DONE_SECONDS))
        except StoreUnavailable:
            log.warning("could not note a %s before asking Refold: Redis unavailable", name.split(":")[0])
            return True

    async def _forget(self, name: str) -> None:
        try:
            async with redis_errors():
                await self._redis.delete(keys.action_done(name))
        except StoreUnavailable:
            log.warning("could not forget a refused %s: Redis unavailable", name.split(":")[0])

    async def _mark(self, name: str, value: str) -> None:
        try:
            async with redis_errors():
                await self._redis.set(keys.action_done(name), value, ex=DONE_SECONDS)
        except StoreUnavailable:
            log.warning("could not mark %s done: Redis unavailable", name.split(":")[0])
