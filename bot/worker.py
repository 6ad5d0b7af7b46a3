"""`python -m bot worker`: runs lookup jobs that web processes queue, so their event loops only ack.

Several workers may run; each takes jobs one by one (BLMOVE) and runs up to MAX_CONCURRENT_JOBS at a
time. SIGTERM stops taking jobs and lets the running ones finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from slack_sdk.web.async_client import AsyncWebClient

from bot.app import make_slack_client
from bot.deps import Deps, build_deps
from bot.jobs import HEARTBEAT_SECONDS, JobQueue
from bot.logs import bind_request
from bot.settings import Settings, SlackMode
from bot.slack import actions, commands, shortcuts  # noqa: F401 - importing registers their jobs
from bot.slack.dispatch import run_job
from bot.slack.env import SlackEnv
from bot.store.errors import StoreUnavailable
from bot.store.installations import RedisInstallationStore
from bot.tasks import BackgroundTasks

log = logging.getLogger(__name__)

MAX_CONCURRENT_JOBS = 50
TAKE_WAIT_SECONDS = 1.0


class SlackClients:
    """The Slack client for a job's workspace: the one bot token, or the installation's (OAuth)."""

    def __init__(self, settings: Settings, installations: RedisInstallationStore | None) -> None:
        self._settings = settings
        self._installations = installations
        self._default = make_slack_client(settings)
        self._by_token: dict[str, AsyncWebClient] = {}

    async def for_job(self, job_data: dict) -> AsyncWebClient | None:
        if self._installations is None:
            return self._default
        bot = await self._installations.async_find_bot(
            enterprise_id=job_data.get("enterprise"),
            team_id=job_data.get("team"),
            is_enterprise_install=job_data.get("org_wide"),
        )
        if bot is None or not bot.bot_token:
            return None
        client = self._by_token.get(bot.bot_token)
        if client is None:
            client = AsyncWebClient(token=bot.bot_token, base_url=self._settings.slack_api_url)
            self._by_token[bot.bot_token] = client
        return client


async def run_worker(settings: Settings) -> int:
    deps: Deps = build_deps(settings)
    installations = (
        RedisInstallationStore(deps.redis, deps.cipher) if settings.slack_mode is SlackMode.OAUTH else None
    )
    tasks = BackgroundTasks()
    env = SlackEnv(deps=deps, tasks=tasks, installations=installations)
    clients = SlackClients(settings, installations)
    queue = JobQueue(deps.redis, deps.cipher)
    worker_id = queue.new_worker_id()
    slots = asyncio.Semaphore(MAX_CONCURRENT_JOBS)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    async def heartbeat() -> None:
        while not stop.is_set():
            with contextlib.suppress(StoreUnavailable):
                await queue.beat(worker_id)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), HEARTBEAT_SECONDS / 3)

    async def handle(raw: bytes) -> None:
        try:
            job_data = queue.open(raw)
            if job_data is None:
                return
            bind_request(job_data.get("team") or job_data.get("enterprise"))
            client = await clients.for_job(job_data)
            if client is None:
                log.error("no installation for job %s; dropped", job_data.get("kind"))
                return
            await run_job(env, job_data, client)
        finally:
            slots.release()
            with contextlib.suppress(StoreUnavailable):
                await queue.done(worker_id, raw)

    beating = asyncio.create_task(heartbeat())
    with contextlib.suppress(StoreUnavailable):
        await queue.beat(worker_id)
        await queue.requeue_orphans()
    log.info("worker %s taking jobs", worker_id)
    while not stop.is_set():
        await slots.acquire()
        try:
            raw = await queue.take(worker_id, TAKE_WAIT_SECONDS)
        except StoreUnavailable:
            slots.release()
            await asyncio.sleep(1)
            continue
        if raw is None:
            slots.release()
            continue
        tasks.spawn(handle(raw), "job")
    log.info("worker %s stopping: finishing %d jobs", worker_id, tasks.pending)
    beating.cancel()
    with contextlib.suppress(StoreUnavailable):
        await queue.retire(worker_id)
    await tasks.drain(10.0)
    await deps.aclose()
    return 0
