"""`POST /refold/webhooks/{route_id}`: Refold's deliveries for one alert route.

Answered at once (Refold waits for a 200 and retries otherwise); the card is posted by a job. A body is
read no further than 64 kB, and none of it is ever logged: it is unverified until the signature says
otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import assert_never

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bot import metrics
from bot.container import Container
from bot.jobs.kinds import AlertJob, Origin, ReplyTarget
from bot.logs import bind_request, request_id_var
from bot.refold.webhooks import SIGNATURE_HEADER
from bot.store.errors import StoreUnavailable
from bot.usecases.alerts import MAX_BODY_BYTES, Outcome

log = logging.getLogger(__name__)


def http_status(outcome: Outcome) -> int:
    """Refold retries anything but a 2xx: refusals it should not retry are still answered as such."""
    match outcome:
        case "unknown_route":
            return 404
        case "not_connected":
            return 403
        case "bad_signature":
            return 401
        case "unreadable":
            return 400
        case "filtered" | "duplicate" | "accepted":
            return 200
        case _:
            assert_never(outcome)


async def read_capped(request: Request, limit: int) -> bytes | None:
    """The body, read only as far as `limit`; None when it is longer (a declared length over it is
    refused unread)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    received = bytearray()
    async for chunk in request.stream():
        received += chunk
        if len(received) > limit:
            return None
    # Starlette keeps a read body here, so a handler after this reads it again without the stream.
    request._body = bytes(received)
    return bytes(received)


def webhook_endpoint(c: Container) -> Callable[[Request], Awaitable[Response]]:
    async def refold_webhook(request: Request) -> Response:
        route_id = str(request.path_params.get("route_id", ""))
        bind_request(None)
        body = await read_capped(request, MAX_BODY_BYTES)
        if body is None:
            log.warning("refused a Refold webhook delivery of more than %d bytes", MAX_BODY_BYTES)
            metrics.WEBHOOKS.labels("too_large").inc()
            return JSONResponse({"error": "body too large"}, status_code=413)
        try:
            verdict = await c.alerts.accept(route_id, body, request.headers.get(SIGNATURE_HEADER))
        except StoreUnavailable:
            log.warning("a Refold webhook delivery was refused with 503: Redis unavailable (Refold retries)")
            metrics.WEBHOOKS.labels("redis_unavailable").inc()
            return JSONResponse({"error": "temporarily unavailable"}, status_code=503)
        route = verdict.route
        if route is not None:
            bind_request(route.team_id or route.enterprise_id, request_id_var.get())
        status = http_status(verdict.outcome)
        if status != 200:
            log.warning(
                "refused a Refold webhook delivery for route %s…: %s (%d)",
                "".join(ch for ch in route_id[:6] if ch.isalnum()),
                verdict.reason,
                status,
            )
            metrics.WEBHOOKS.labels(verdict.outcome).inc()
            return JSONResponse({"error": verdict.reason}, status_code=status)
        delivery = verdict.delivery
        if route is None or delivery is None:
            log.info("Refold webhook delivery acknowledged, nothing to post (%s)", verdict.reason)
            metrics.WEBHOOKS.labels(verdict.outcome).inc()
            return JSONResponse({"ok": True, "result": verdict.reason})
        c.dispatcher.submit(
            AlertJob(
                origin=Origin(team_id=route.team_id, enterprise_id=route.enterprise_id),
                reply=ReplyTarget(channel_id=route.channel_id, ephemeral=False),
                interaction=f"alert:{route.route_id}:{delivery.dedupe_name}",
                route_id=route.route_id,
                delivery=delivery,
            )
        )
        log.info("Refold webhook delivery accepted: %s", delivery.event.value)
        metrics.WEBHOOKS.labels(verdict.outcome).inc()
        return JSONResponse({"ok": True, "result": "accepted"})

    return refold_webhook
