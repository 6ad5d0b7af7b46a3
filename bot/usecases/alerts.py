"""Alert routes and webhook deliveries: which channel gets which Refold events, and whether one
delivery is acted on (signed, known, wanted, not seen before)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from bot.errors import BotError
from bot.parse import SnoozeFor
from bot.refold.causes import Cause
from bot.refold.client import RefoldClient
from bot.refold.credentials import AuthKind, RefoldCredentials
from bot.refold.ids import InvalidExecutionId, normalize_execution_id
from bot.refold.webhooks import (
    Delivery,
    UnreadableDelivery,
    WebhookEvent,
    read_delivery,
    signature_valid,
)
from bot.store.alert_history import AlertHistory, Repeat, repeat_of
from bot.store.alert_routes import AlertEvents, AlertRoute, AlertRouteStore, new_route_id
from bot.store.audit import AuditLog
from bot.store.daily_counts import CountedCause, DailyCounts
from bot.store.errors import NotConnected
from bot.store.incidents import Arrival, BatchTurn, CauseFields, IncidentStore, IncidentView, RerunClaim
from bot.store.seen import SeenDeliveries
from bot.store.snoozes import LONGEST_SECONDS, AlertSnooze, SnoozeKind, SnoozeStore, snooze_id
from bot.usecases.audited import audited
from bot.usecases.digest import DailyDigests
from bot.usecases.workspace import CredentialResolver, Workspace

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/refold/webhooks/"
MAX_BODY_BYTES = 64 * 1024


@dataclass(frozen=True)
class RouteFilters:
    events: AlertEvents = AlertEvents.ERRORED
    environment: str | None = None
    workflow: str | None = None


def subscribed_events(events: AlertEvents) -> list[str]:
    """What a route subscribes to in Refold: its workflow events, and expiring connections always."""
    chosen = {
        AlertEvents.ERRORED: [WebhookEvent.WORKFLOW_ERRORED],
        AlertEvents.COMPLETED: [WebhookEvent.WORKFLOW_COMPLETED],
        AlertEvents.ALL: [WebhookEvent.WORKFLOW_ERRORED, WebhookEvent.WORKFLOW_COMPLETED],
    }[events]
    return [e.value for e in [*chosen, WebhookEvent.CONNECTION_EXPIRED]]


@dataclass(frozen=True)
class TurnedOn:
    route: AlertRoute
    created: bool  # False: the channel's route was updated
    url: str | None  # the webhook URL, when PUBLIC_URL says where the bot is
    registered: bool  # subscribed in Refold by the bot
    register_error: BotError | None
    signed: bool  # deliveries are checked against the API key


@dataclass(frozen=True)
class TurnedOff:
    route: AlertRoute | None
    unregister_error: BotError | None = None


# What became of a delivery. The endpoint turns it into an HTTP status; metrics count it by name.
Outcome = Literal[
    "unknown_route", "not_connected", "bad_signature", "unreadable", "filtered", "duplicate", "accepted"
]


@dataclass(frozen=True)
class Verdict:
    """What became of a delivery, why, and what (if anything) is to be posted."""

    outcome: Outcome
    reason: str
    route: AlertRoute | None = None
    delivery: Delivery | None = None


class AlertService:
    def __init__(
        self,
        routes: AlertRouteStore,
        seen: SeenDeliveries,
        incidents: IncidentStore,
        history: AlertHistory,
        snoozes: SnoozeStore,
        resolver: CredentialResolver,
        refold: RefoldClient,
        audit: AuditLog,
        counts: DailyCounts,
        digests: DailyDigests,
        public_url: str | None,
    ) -> None:
        self.routes = routes
        self._seen = seen
        self._incidents = incidents
        self._history = history
        self.snoozes = snoozes
        self._resolver = resolver
        self._refold = refold
        self._audit = audit
        self._counts = counts
        self.digests = digests
        self._public_url = public_url

    def webhook_url(self, route_id: str) -> str | None:
        return f"{self._public_url}{WEBHOOK_PATH}{route_id}" if self._public_url else None

    # --- routes -----------------------------------------------------------------

    async def turn_on(
        self, workspace: Workspace, channel_id: str, filters: RouteFilters, who: str | None
    ) -> TurnedOn:
        """Create the channel's route, or change its filters; subscribe it in Refold when the bot
        knows its public URL. Raises NotConnected before creating anything."""
        resolved = await self._resolver.resolve(workspace)
        existing = await self.routes.for_channel(workspace.label, channel_id)
        route = AlertRoute(
            route_id=existing.route_id if existing else new_route_id(),
            team_id=workspace.team_id,
            enterprise_id=workspace.enterprise_id,
            channel_id=channel_id,
            events=filters.events,
            environment=filters.environment,
            workflow=filters.workflow,
            created_by=existing.created_by if existing and existing.created_by else who,
            created_at=existing.created_at if existing else datetime.now(UTC),
            refold_webhook_id=existing.refold_webhook_id if existing else None,
        )
        url = self.webhook_url(route.route_id)
        error: BotError | None = None
        if url is not None:
            events = subscribed_events(filters.events)
            creds = resolved.credentials
            workflow_ids = await self._workflow_ids(creds, filters.workflow)
            try:
                if route.refold_webhook_id:
                    try:
                        await self._refold.update_webhook(
                            creds, route.refold_webhook_id, events, workflow_ids
                        )
                    except BotError as exc:
                        log.info(
                            "updating the route's Refold webhook failed (%s); registering anew", exc.kind
                        )
                        route.refold_webhook_id = None
                if route.refold_webhook_id is None:
                    route.refold_webhook_id = await self._refold.register_webhook(
                        creds, url, events, f"Slack alerts ({workspace.label}/{channel_id})", workflow_ids
                    )
            except BotError as exc:
                log.warning("registering an alert route's webhook in Refold failed: %s", exc.kind.value)
                error = exc
        await self.routes.save(workspace.label, route)
        await self._record(workspace, who, "alerts on", f"<#{channel_id}>")
        log.info("alert route %s… %s for a channel", route.route_id[:6], "updated" if existing else "created")
        return TurnedOn(
            route=route,
            created=existing is None,
            url=url,
            registered=route.refold_webhook_id is not None and error is None,
            register_error=error,
            signed=resolved.credentials.kind is AuthKind.API_KEY,
        )

    async def _workflow_ids(self, creds: RefoldCredentials, workflow: str | None) -> list[str] | None:
        """The route's workflow filter as IDs for Refold, so it sends fewer deliveries (the bot still
        filters on arrival). None: no filter, or a name Refold's list could not resolve."""
        if workflow is None:
            return None
        try:
            return [normalize_execution_id(workflow)]  # workflow IDs are 24 hex characters too
        except InvalidExecutionId:
            pass
        try:
            found = await self._refold.workflow_ids_named(creds, workflow)
        except BotError as exc:
            log.warning(
                "the route's workflow could not be looked up in Refold (%s); filtered on arrival", exc.kind
            )
            return None
        if not found:
            log.info("no Refold workflow has the route's workflow name; filtered on arrival only")
        return found or None

    async def turn_off(self, workspace: Workspace, channel_id: str, who: str | None) -> TurnedOff:
        route = await self.routes.for_channel(workspace.label, channel_id)
        if route is None:
            return TurnedOff(None)
        return await self.remove(workspace, route, who)

    async def remove(self, workspace: Workspace, route: AlertRoute, who: str | None) -> TurnedOff:
        """Delete a route, and its Refold subscription if the bot made one."""
        error: BotError | None = None
        if route.refold_webhook_id:
            try:
                creds = (await self._resolver.resolve(workspace)).credentials
                await self._refold.delete_webhook(creds, route.refold_webhook_id)
            except BotError as exc:
                log.warning("deleting an alert route's Refold webhook failed: %s", exc.kind.value)
                error = exc
        await self.routes.delete(workspace.label, route)
        await self.digests.store.forget(route.route_id)
        await self._record(workspace, who, "alerts off", f"<#{route.channel_id}>")
        log.info("alert route %s… removed", route.route_id[:6])
        return TurnedOff(route, error)

    async def of_workspace(self, workspace: Workspace) -> list[AlertRoute]:
        return await self.routes.of_workspace(workspace.label)

    async def forget(self, workspace: Workspace) -> None:
        """The workspace uninstalled: its routes go (their Refold subscriptions are left to Refold,
        whose deliveries now find no route and get 404)."""
        await self.routes.forget(workspace.label)

    async def _record(self, workspace: Workspace, who: str | None, action: str, detail: str) -> None:
        await audited(self._audit, workspace, who, action, detail)

    # --- deliveries ------------------------------------------------------------

    async def accept(self, route_id: str, body: bytes, signature: str | None) -> Verdict:
        """Decide a delivery: an unknown route, an unconnected workspace, a bad signature, an unreadable
        body, an event the route does not post, one already received, or accepted (with the delivery
        to post). Raises StoreUnavailable when Redis is away."""
        route = await self.routes.get(route_id)
        if route is None:
            return Verdict("unknown_route", "unknown route")
        workspace = Workspace(route.team_id, route.enterprise_id)
        try:
            creds = (await self._resolver.resolve(workspace)).credentials
        except NotConnected:
            return Verdict("not_connected", "the route's workspace is not connected to Refold")
        if creds.kind is AuthKind.API_KEY and not signature_valid(
            body, signature, creds.secret.get_secret_value()
        ):
            return Verdict("bad_signature", "invalid or missing x-cobalt-signature")
        try:
            delivery = read_delivery(body)
        except UnreadableDelivery as exc:
            return Verdict("unreadable", str(exc))
        if not wanted(route, delivery):
            return Verdict("filtered", "not an event this route posts", route)
        if not await self._seen.claim(f"webhook:{route.route_id}", delivery.dedupe_name):
            return Verdict("duplicate", "already received", route)
        return Verdict("accepted", "accepted", route, delivery)

    async def arrive_failure(
        self, route: AlertRoute, cause: Cause, alert: str, execution_id: str, account: str | None, now: float
    ) -> Arrival:
        """Whether this failure gets its own card, opens its cause's incident, or joins it."""
        fields = CauseFields(
            cause.workflow, cause.node_name or "", cause.node_type or "", cause.error, cause.workflow_id or ""
        )
        return await self._incidents.arrive(
            route.route_id,
            cause.key,
            fields,
            alert=alert,
            execution_id=execution_id,
            account=account,
            now=now,
        )

    async def claim_convert(
        self, route: AlertRoute, cause: str, generation: str, job: str, card_ts: str = ""
    ) -> str:
        return await self._incidents.claim_convert(route.route_id, cause, generation, job, card_ts)

    async def incident(self, route: AlertRoute, cause: str) -> IncidentView | None:
        return await self._incidents.view(route.route_id, cause)

    async def claim_batch(
        self, route: AlertRoute, cause: str, generation: str, index: int, job: str, now: float
    ) -> tuple[BatchTurn, str]:
        return await self._incidents.claim_batch(route.route_id, cause, generation, index, job, now=now)

    async def batch_shown(self, route: AlertRoute, cause: str, index: int, ts: str, shown: int) -> None:
        await self._incidents.batch_shown(route.route_id, cause, index, ts, shown)

    # --- what people do on an incident's message --------------------------------

    async def resolve(
        self, workspace: Workspace, route: AlertRoute, cause: str, who: str, now: float
    ) -> bool:
        """False when it was not open (resolved already, or over)."""
        done = await self._incidents.resolve(route.route_id, cause, who, now=now)
        if done:
            await self._record(workspace, who, "incident resolve", f"<#{route.channel_id}> cause {cause}")
        return done

    async def snooze(
        self, workspace: Workspace, route: AlertRoute, cause: str, who: str, until: float, now: float
    ) -> None:
        await self._incidents.snooze(route.route_id, cause, who, until=until, now=now)
        ends = datetime.fromtimestamp(until, UTC).isoformat(timespec="minutes")
        await self._record(
            workspace, who, "incident snooze", f"<#{route.channel_id}> cause {cause} until {ends}"
        )

    async def unsnooze(self, workspace: Workspace, route: AlertRoute, cause: str, who: str) -> bool:
        ended = await self._incidents.unsnooze(route.route_id, cause)
        if ended:
            await self._record(workspace, who, "incident unsnooze", f"<#{route.channel_id}> cause {cause}")
        return ended

    async def press_rerun(
        self,
        workspace: Workspace,
        route: AlertRoute,
        cause: str,
        who: str,
        runs: int,
        accounts: int,
        now: float,
    ) -> None:
        """One audit entry for the press; each run's own rerun is audited as it is made."""
        view = await self._incidents.view(route.route_id, cause)
        asked = runs + (len(view.rerun_done) if view is not None else 0)
        await self._incidents.press_rerun(route.route_id, cause, who, asked, now=now)
        await self._record(
            workspace,
            who,
            "incident rerun",
            f"<#{route.channel_id}> cause {cause}: {runs} runs across {accounts} linked accounts",
        )

    async def claim_rerun(self, route: AlertRoute, cause: str, execution_id: str, press: str) -> RerunClaim:
        return await self._incidents.claim_rerun(route.route_id, cause, execution_id, press)

    async def rerun_started(self, route: AlertRoute, cause: str, execution_id: str, new_id: str) -> None:
        await self._incidents.rerun_started(route.route_id, cause, execution_id, new_id)

    async def rerun_refused(self, route: AlertRoute, cause: str, execution_id: str, press: str) -> None:
        await self._incidents.rerun_refused(route.route_id, cause, execution_id, press)

    async def reruns_running(
        self, route: AlertRoute, cause: str, terminal: frozenset[str]
    ) -> list[tuple[str, str]]:
        return await self._incidents.reruns_running(route.route_id, cause, terminal)

    async def rerun_status(
        self, route: AlertRoute, cause: str, new_id: str, status: str, *, account: str, completed: bool
    ) -> None:
        await self._incidents.rerun_status(
            route.route_id, cause, new_id, status, account=account, completed=completed
        )

    async def succeeded(self, route: AlertRoute, workflow: str, account: str, now: float) -> list[str]:
        """A completed run: the route's incidents whose accounts it recovers (their causes)."""
        return await self._incidents.succeeded(route.route_id, workflow, account, now=now)

    async def open_incidents(self, workspace: Workspace, now: float) -> list[tuple[AlertRoute, IncidentView]]:
        """The workspace's incidents with a failure in the last 30 minutes, latest first."""
        found: list[tuple[AlertRoute, IncidentView]] = []
        for route in await self.routes.of_workspace(workspace.label):
            for cause in await self._incidents.open_causes(route.route_id, now=now):
                view = await self._incidents.view(route.route_id, cause)
                if view is not None and view.state == "open":
                    found.append((route, view))
        return sorted(found, key=lambda pair: -pair[1].last_seen)

    async def remember(self, route: AlertRoute, delivery: Delivery, now: float) -> Repeat | None:
        """Record a workflow delivery in the route's history of its workflow and linked account; for
        a failure, where it stands among the earlier ones. None when the delivery names neither."""
        workflow = delivery.workflow_id or delivery.workflow_name
        account, execution = delivery.linked_account_id, delivery.instance_id
        if not workflow or not account or not execution:
            return None
        failed = delivery.event is WebhookEvent.WORKFLOW_ERRORED
        history = await self._history.record(
            route.route_id, workflow, account, "failed" if failed else "completed", execution, now=now
        )
        return repeat_of(history, now) if failed else None

    async def count(
        self,
        route: AlertRoute,
        delivery: Delivery,
        now: float,
        *,
        cause: Cause | None = None,
        run_name: str | None = None,
    ) -> None:
        """Count a workflow delivery towards the digest (a snoozed one too: it failed all the same)."""
        if not delivery.instance_id:
            return
        workflow = delivery.workflow_name or run_name or delivery.workflow_id or "an unnamed workflow"
        await self._counts.record(
            route.route_id,
            execution_id=delivery.instance_id,
            outcome="failed" if delivery.event is WebhookEvent.WORKFLOW_ERRORED else "completed",
            workflow=workflow,
            account=delivery.linked_account_id,
            cause=CountedCause(cause.key, workflow, cause.node_name or "", cause.error) if cause else None,
            now=now,
        )

    # --- snoozes of a workflow or a linked account --------------------------------

    async def snooze_alerts(
        self,
        workspace: Workspace,
        route: AlertRoute,
        kind: SnoozeKind,
        value: str,
        who: str,
        length: SnoozeFor,
        now: float,
    ) -> AlertSnooze:
        until_success = length == "until-success"
        seconds = LONGEST_SECONDS if until_success else int(length[:-1]) * 3600
        snooze = await self.snoozes.put(
            route.route_id, kind, value, who, until=now + seconds, until_success=until_success, now=now
        )
        await self._record(
            workspace, who, "alerts snooze", f"<#{route.channel_id}> {kind} {value} for {length}"
        )
        return snooze

    async def unsnooze_alerts(
        self, workspace: Workspace, route: AlertRoute, kind: SnoozeKind, value: str, who: str, now: float
    ) -> AlertSnooze | None:
        """The snooze to end now (its end job says so in the channel); None when there is none."""
        snooze = await self.snoozes.get(route.route_id, snooze_id(kind, value))
        if snooze is None or snooze.until <= now:
            return None
        await self._record(workspace, who, "alerts unsnooze", f"<#{route.channel_id}> {kind} {value}")
        return snooze

    async def first_notice(self, route: AlertRoute, what: str) -> bool:
        """True once per route and `what`: a problem its creator is told about once."""
        return await self._seen.claim(f"told:{route.route_id}", what)


def wanted(route: AlertRoute, delivery: Delivery) -> bool:
    """Does the route post this event? The environment of a workflow event is known only once the
    execution is fetched, so that part is checked by `environment_wanted` later."""
    event = delivery.event
    if event is WebhookEvent.CONNECTION_EXPIRED:
        return environment_wanted(route, delivery.environment)
    if event is WebhookEvent.WORKFLOW_ERRORED:
        if route.events is AlertEvents.COMPLETED:
            return False
    elif event is WebhookEvent.WORKFLOW_COMPLETED:
        if route.events is AlertEvents.ERRORED:
            return False
    else:
        return False
    if route.workflow:
        wanted_name = route.workflow.casefold()
        return wanted_name in {
            (delivery.workflow_id or "").casefold(),
            (delivery.workflow_name or "").casefold(),
        }
    return True


def environment_wanted(route: AlertRoute, environment: str | None) -> bool:
    return route.environment is None or (environment or "").lower() == route.environment
