"""A card's Rerun asks Refold at most once per click, on a real Redis: a job run again after its worker
died mid-call does not ask again (Refold may have started the run), a click Refold refused may."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest
import redis.asyncio as aioredis

from bot.refold.errors import RateLimited, Unreachable
from bot.store.audit import AuditLog
from bot.usecases.actions import ActionRequest, ExecutionActions, RerunUnconfirmed
from bot.usecases.workspace import Workspace
from tests.harness import EXEC_ID


class Refold:
    """Counts rerun calls; each answers as `answers` says in turn (a new ID, an error, or never)."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.calls = 0
        self.asked = asyncio.Event()

    async def rerun_execution(self, credentials: object, execution_id: str, account: str | None) -> str:
        self.calls += 1
        self.asked.set()
        answer = self.answers.pop(0)
        if answer == "never":
            await asyncio.Event().wait()  # the worker dies while Refold still has the call
        if isinstance(answer, Exception):
            raise answer
        return str(answer)


class Resolver:
    async def resolve(self, workspace: Workspace) -> SimpleNamespace:
        return SimpleNamespace(credentials=object(), record=None)


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    redis = aioredis.from_url(redis_url)
    yield redis
    await redis.aclose()


def actions(client: aioredis.Redis, refold: Refold) -> ExecutionActions:
    return ExecutionActions(Resolver(), refold, AuditLog(client), client)  # type: ignore[arg-type]


def click(key: str) -> ActionRequest:
    return ActionRequest(Workspace("T1"), EXEC_ID, "acme", "U1", key)


async def test_a_rerun_whose_worker_died_mid_call_is_not_asked_again(client: aioredis.Redis) -> None:
    refold = Refold("never", "new-run")
    first = asyncio.create_task(actions(client, refold).rerun(click("died")))
    await refold.asked.wait()
    first.cancel()  # as a SIGKILL does: no answer recorded, no cleanup
    with pytest.raises(asyncio.CancelledError):
        await first
    with pytest.raises(RerunUnconfirmed):
        await actions(client, refold).rerun(click("died"))
    assert refold.calls == 1
    assert await actions(client, refold).rerun_made(click("died")) is None


async def test_a_rerun_refold_refused_or_lost_is_asked_again_only_when_nothing_started(
    client: aioredis.Redis,
) -> None:
    refold = Refold(RateLimited("429"), "new-run")
    with pytest.raises(RateLimited):
        await actions(client, refold).rerun(click("refused"))
    assert await actions(client, refold).rerun(click("refused")) == "new-run"
    assert refold.calls == 2
    # An answer lost on the way back (Refold may have started it) is not asked again.
    lost = Refold(Unreachable("timed out"), "another-run")
    with pytest.raises(Unreachable):
        await actions(client, lost).rerun(click("lost"))
    with pytest.raises(RerunUnconfirmed):
        await actions(client, lost).rerun(click("lost"))
    assert lost.calls == 1


async def test_a_rerun_done_answers_with_its_run_again_without_asking(client: aioredis.Redis) -> None:
    refold = Refold("new-run")
    assert await actions(client, refold).rerun(click("done")) == "new-run"
    assert await actions(client, refold).rerun(click("done")) == "new-run"
    assert await actions(client, refold).rerun_made(click("done")) == "new-run"
    assert refold.calls == 1
