"""One function builds every long-lived part of a process. Web, worker and CLI all use it.

Nothing here does I/O at build time: pools connect on first use, so building is cheap and a CLI
verb that needs only Redis never touches Slack or Refold.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass

import httpx
import redis.asyncio as aioredis
from redis.exceptions import RedisError
from saq import CronJob, Worker
from saq.types import Context

from bot.jobs.queue import DIGEST_UPKEEP, DIGEST_UPKEEP_CRON, RUN, STANDBY_PREFIX, JobQueue
from bot.refold.client import RefoldClient, RetryPolicy, make_http_client, warm_up
from bot.refold.credentials import AuthKind, RefoldCredentials
from bot.settings import Settings, SlackMode
from bot.slack.clients import SlackClients
from bot.slack.dispatch import Dispatcher
from bot.slack.follow_records import FollowKit
from bot.slack.handlers.digest import upkeep_function
from bot.slack.handlers.runner import JobRunner, job_function
from bot.slack.responder import Responder
from bot.store.alert_history import AlertHistory
from bot.store.alert_routes import AlertRouteStore
from bot.store.audit import AuditLog
from bot.store.credentials import CredentialStore
from bot.store.crypto import Cipher
from bot.store.daily_counts import DailyCounts
from bot.store.deliveries import Deliveries
from bot.store.digests import DigestStore
from bot.store.executions import ExecutionCache
from bot.store.follows import FollowStore
from bot.store.incidents import IncidentStore
from bot.store.installations import RedisInstallationStore
from bot.store.known_accounts import KnownAccounts
from bot.store.ratelimit import RefoldRateLimiter
from bot.store.recent import RecentLookups
from bot.store.redis import (
    eviction_problem,
    make_redis,
    ping_problem,
    quiet_unrecorded_jobs,
    safe_url,
    server_facts,
)
from bot.store.seen import SeenDeliveries
from bot.store.slack_pacer import SlackPacer
from bot.store.snoozes import SnoozeStore
from bot.tasks import BackgroundTasks
from bot.usecases.actions import ExecutionActions
from bot.usecases.alerts import AlertService
from bot.usecases.connect import ConnectService
from bot.usecases.digest import DailyDigests
from bot.usecases.lookup import ExecutionLookup
from bot.usecases.search import ExecutionSearch
from bot.usecases.workspace import CredentialResolver

log = logging.getLogger(__name__)

# saq's upkeep: how often it promotes scheduled jobs, reports a worker alive, and sweeps jobs of dead
# workers. Live workers are reported with a TTL of worker_info + 1 s.
WORKER_TIMERS = {"schedule": 1, "worker_info": 2, "sweep": 1, "abort": 1}
STANDBY_CONCURRENCY = 2


@dataclass
class Container:
    settings: Settings
    http: httpx.AsyncClient
    redis: aioredis.Redis
    cipher: Cipher
    credentials: CredentialStore
    known_accounts: KnownAccounts
    resolver: CredentialResolver
    refold: RefoldClient
    lookup: ExecutionLookup
    connect: ConnectService
    actions: ExecutionActions
    follows: FollowKit
    alerts: AlertService
    seen: SeenDeliveries
    installations: RedisInstallationStore | None  # OAuth mode only
    slack: SlackClients
    jobs: JobQueue
    runner: JobRunner
    tasks: BackgroundTasks  # work started after an ack; drained on shutdown
    dispatcher: Dispatcher
    responder: Responder
    standby: Worker[Context] | None = None
    standby_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Before serving: pay the HTTP stack's first-request imports, and say if Redis is away."""
        quiet_unrecorded_jobs(asyncio.get_running_loop())
        await warm_up(self.http)
        await self.warn_if_redis_is_down()

    async def warn_if_redis_is_down(self) -> None:
        """Said once at start-up, loudly: everything but the env-fallback lookups needs Redis."""
        cause = await ping_problem(self.redis)
        if cause is not None:
            log.warning(
                "Redis at %s is not answering (%s): lookups, connects and the job queue fail until it "
                "does; /healthz answers 503. Check REDIS_URL.",
                safe_url(self.settings.redis_url.get_secret_value()),
                cause,
            )
            return
        await self.warn_if_redis_can_evict()

    async def warn_if_redis_can_evict(self) -> None:
        """An evicting Redis loses credentials silently when it fills up: said at every start."""
        try:
            facts = await server_facts(self.redis)
        except (RedisError, OSError):
            return  # a Redis that answers PING but not INFO is reported by `check`
        if facts.eviction is not None and facts.eviction != "noeviction":
            log.warning("Redis %s", eviction_problem(facts.eviction))

    def saq_worker(
        self, concurrency: int, *, drain_seconds: int = 10, standby: bool = False
    ) -> Worker[Context]:
        """saq's worker over this process's queue; `standby`: the web process's, which takes jobs
        only while no worker process is alive."""
        upkeep = upkeep_function(self.alerts, self.jobs)
        return Worker(
            self.jobs.standby() if standby else self.jobs.saq,
            functions=[(RUN, job_function(self.jobs, self.runner)), (DIGEST_UPKEEP, upkeep)],
            cron_jobs=[CronJob(upkeep, cron=DIGEST_UPKEEP_CRON, timeout=60)],
            concurrency=concurrency,
            timers=WORKER_TIMERS,  # type: ignore[arg-type]
            dequeue_timeout=min(1.0, self.settings.redis_timeout_seconds / 2),
            shutdown_grace_period_s=drain_seconds,
            id=f"{STANDBY_PREFIX}{uuid.uuid4().hex[:12]}" if standby else None,
        )

    async def start_standby_worker(self) -> None:
        """A web process's own small worker: it takes jobs only while no worker process is alive, so
        scheduled work (follow polls) goes on in a deployment that runs none."""
        worker = self.saq_worker(STANDBY_CONCURRENCY, drain_seconds=5, standby=True)
        worker.SIGNALS = []  # the web server owns SIGTERM and SIGINT
        self.standby = worker
        self.standby_task = asyncio.create_task(worker.start(), name="standby-worker")

    async def aclose(self, grace_seconds: float = 10.0) -> None:
        if self.standby is not None and self.standby_task is not None:
            await self.standby.stop()
            with contextlib.suppress(asyncio.CancelledError):
                await self.standby_task
        await self.tasks.drain(grace_seconds)
        await self.lookup.bookkeeping.drain(2.0)
        await self.http.aclose()
        await self.redis.aclose()


def fallback_credentials(settings: Settings) -> RefoldCredentials | None:
    if settings.refold_api_key is None:
        return None
    return RefoldCredentials(
        base_url=settings.refold_api_url,
        kind=AuthKind.API_KEY,
        secret=settings.refold_api_key,
        linked_account_id=settings.refold_linked_account_id,
    )


def build_container(
    settings: Settings, *, retry: RetryPolicy | None = None, redis_connections: int = 50
) -> Container:
    http = make_http_client(settings.refold_timeout_seconds)
    redis = make_redis(settings, max_connections=redis_connections)
    cipher = Cipher(settings.credential_keys)
    turns = RefoldRateLimiter(redis)
    refold = RefoldClient(http, retry, turns)
    credentials = CredentialStore(redis, cipher)
    known = KnownAccounts(redis)
    resolver = CredentialResolver(
        credentials,
        settings.refold_api_url,
        fallback_credentials(settings),
        settings.credentials_cache_seconds,
    )
    lookup = ExecutionLookup(
        resolver,
        refold,
        known,
        redis,
        ExecutionCache(redis, cipher, settings.terminal_cache_seconds),
        RecentLookups(redis),
        turns,
    )
    audit = AuditLog(redis)
    connect = ConnectService(settings, credentials, known, refold, resolver, audit)
    installations = RedisInstallationStore(redis, cipher) if settings.slack_mode is SlackMode.OAUTH else None
    slack = SlackClients(settings, installations, SlackPacer(redis))
    jobs = JobQueue(redis, cipher)
    actions = ExecutionActions(resolver, refold, audit, redis)
    follows = FollowKit(
        store=FollowStore(redis, cipher),
        scheduler=jobs,
        first_poll_seconds=settings.follow_poll_seconds,
        max_seconds=settings.follow_max_seconds,
    )
    seen = SeenDeliveries(redis)
    counts = DailyCounts(redis)
    routes = AlertRouteStore(redis)
    alerts = AlertService(
        routes,
        seen,
        IncidentStore(redis),
        AlertHistory(redis),
        SnoozeStore(redis),
        resolver,
        refold,
        audit,
        counts,
        DailyDigests(DigestStore(redis), counts, routes, audit),
        settings.public_url,
    )
    runner = JobRunner(
        lookup,
        http,
        slack,
        Deliveries(redis),
        follows,
        actions,
        alerts,
        ExecutionSearch(resolver, refold),
        scheduler=jobs,
        dashboard_url=settings.refold_dashboard_url,
    )
    tasks = BackgroundTasks()
    return Container(
        settings=settings,
        http=http,
        redis=redis,
        cipher=cipher,
        credentials=credentials,
        known_accounts=known,
        resolver=resolver,
        refold=refold,
        lookup=lookup,
        connect=connect,
        actions=actions,
        follows=follows,
        alerts=alerts,
        seen=seen,
        installations=installations,
        slack=slack,
        jobs=jobs,
        runner=runner,
        tasks=tasks,
        dispatcher=Dispatcher(jobs, runner.run, tasks),
        responder=Responder(http, tasks),
    )
