"""Slow work after an ack: run here, or hand it to a worker process when one is running.

A job is plain JSON (kind, the interaction's body, the workspace, a few arguments), so the same
function runs it in the web process or in `python -m bot worker`. Surfaces register their job
functions with `@job("kind")`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.context import Reply
from bot.slack.env import SlackEnv
from bot.store.errors import StoreUnavailable
from bot.workspace import Workspace

log = logging.getLogger(__name__)

# (env, the job as queued, its reply channel, a Slack client for its workspace, the workspace)
JobFunction = Callable[[SlackEnv, dict[str, Any], Reply, AsyncWebClient, Workspace], Awaitable[None]]
JOBS: dict[str, JobFunction] = {}


def job(kind: str) -> Callable[[JobFunction], JobFunction]:
    def register(function: JobFunction) -> JobFunction:
        JOBS[kind] = function
        return function

    return register


def make_job(
    kind: str, body: dict[str, Any], workspace: Workspace, org_wide: bool, **args: Any
) -> dict[str, Any]:
    return {
        "kind": kind,
        "body": body,
        "team": workspace.team_id,
        "enterprise": workspace.enterprise_id,
        "org_wide": org_wide,
        "args": args,
    }


async def run_job(env: SlackEnv, job_data: dict[str, Any], client: AsyncWebClient) -> None:
    reply = Reply.of(env.deps.http, client, job_data["body"])
    workspace = Workspace(job_data.get("team"), job_data.get("enterprise"))
    await JOBS[job_data["kind"]](env, job_data, reply, client, workspace)


async def submit(env: SlackEnv, job_data: dict[str, Any], client: AsyncWebClient) -> None:
    """Queue the job for a worker if one is alive; otherwise, or if Redis fails, run it here."""
    if env.jobs is not None:
        try:
            if await env.jobs.worker_alive():
                await env.jobs.enqueue(job_data)
                return
        except StoreUnavailable:
            log.warning("job queue unavailable; running %s here", job_data["kind"])
    await run_job(env, job_data, client)
