"""Async Refold API client over one shared, pooled httpx.AsyncClient.

Retry policy: at most `attempts` tries (default 3) inside a total budget, with jittered exponential
backoff, and only for failures that a retry can fix: 429, 502/503/504, connect errors and timeouts.
Everything else is mapped to a typed RefoldError at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Protocol
from urllib.parse import quote

import httpx
import stamina
from httpx_aiohttp import AiohttpTransport
from pydantic import ValidationError

from bot import metrics
from bot.refold.credentials import RefoldCredentials
from bot.refold.errors import (
    MalformedResponse,
    NotFound,
    RateLimited,
    RefoldBusy,
    RefoldError,
    RequestRejected,
    Unauthorized,
    Unreachable,
    UpstreamError,
)
from bot.refold.ids import InvalidExecutionId, normalize_execution_id
from bot.refold.models import Execution
from bot.refold.place import current_place

log = logging.getLogger(__name__)

EXECUTION_PATH = "/api/v2/public/execution"
WEBHOOK_PATH = "/api/v2/public/webhook"
WORKFLOW_PATH = "/api/v2/public/workflow"


def _version() -> str:
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:  # run from a copy that was never installed
        return "0+unknown"


DISTRIBUTION = "refold-execution-bot"
# Refold's operators can tell this bot's requests, and which release sent them.
USER_AGENT = f"{DISTRIBUTION}/{_version()}"


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3
    total_seconds: float = 15.0
    wait_initial: float = 0.2
    wait_max: float = 2.0
    wait_jitter: float = 0.3


def make_http_client(timeout_seconds: float) -> httpx.AsyncClient:
    """The process-wide pool. Redirects are never followed, so a 3xx cannot lead us off Refold.

    httpx is the API; aiohttp's C-accelerated connection pool carries the requests (bench/profiles.md:
    httpcore's pool was a third of the web process's CPU when it made the cards itself).
    """
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=30)
    return httpx.AsyncClient(
        transport=AiohttpTransport(limits=limits),
        timeout=httpx.Timeout(timeout_seconds, connect=min(3.0, timeout_seconds)),
        limits=limits,
        follow_redirects=False,
        headers={"user-agent": USER_AGENT, "accept": "application/json"},
    )


def endpoint_name(method: str, path: str) -> str:
    """`GET /api/v2/public/execution/{id}`: a path with its IDs taken out, for metric labels."""
    segments = [
        "{id}" if any(ch.isdigit() for ch in seg) and len(seg) >= 8 else seg for seg in path.split("/")
    ]
    return f"{method} {'/'.join(segments)}"


async def warm_up(http: httpx.AsyncClient) -> None:
    """Send one request through the pool to a throwaway loopback listener, before serving.

    httpx, httpcore and anyio import parts of themselves on a process's first request: measured at
    about 50 ms with the event loop blocked. During a burst that stall sits between the rate limiter's
    turn and the request leaving, so the first requests left bunched; paying it at start-up instead
    keeps the first burst paced like every later one.
    """

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        await http.get(f"http://127.0.0.1:{port}/warm-up", timeout=2.0)
    except httpx.HTTPError as exc:
        log.debug("HTTP warm-up did not complete: %s", type(exc).__name__)
    finally:
        server.close()
        await server.wait_closed()


def _is_retryable(exc: Exception) -> bool:
    if isinstance(exc, RefoldBusy):
        return False  # our own limiter already waited as long as a person should
    if isinstance(exc, RateLimited | Unreachable):
        return True
    return isinstance(exc, UpstreamError) and exc.transient


def _was_refused(exc: Exception) -> bool:
    """Retryable for a call that must not run twice: Refold said no before doing anything."""
    return isinstance(exc, RateLimited) and not isinstance(exc, RefoldBusy)


_JSONISH_FIELD = r'"{name}"\s*:\s*"((?:[^"\\]|\\.)*)"'
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_TAGS = re.compile(r"<[^>]+>")


def _field_from_text(body: str, name: str) -> str | None:
    # The documented legacy 401 example is not valid JSON (a comma is missing), so fields are
    # recovered one by one when json.loads gives up.
    match = re.search(_JSONISH_FIELD.format(name=re.escape(name)), body)
    if not match:
        return None
    try:
        text: str = json.loads(f'"{match.group(1)}"')
        return text
    except ValueError:
        return match.group(1)


@dataclass(frozen=True)
class ErrorBody:
    message: str | None
    error_code: str | None
    request_id: str | None


def parse_error_body(response: httpx.Response) -> ErrorBody:
    text = response.text[:20_000] if response.content else ""
    header_request_id = response.headers.get("x-request-id")
    data: Any = None
    try:
        data = json.loads(text) if text else None
    except ValueError:
        data = None
    if isinstance(data, dict):
        message = data.get("message")
        code = data.get("error_code") or data.get("error") or data.get("http_error_type")
        request_id = data.get("request_id") or header_request_id
        return ErrorBody(
            message=str(message)[:500] if message is not None else None,
            error_code=str(code)[:100] if code is not None else None,
            request_id=str(request_id)[:100] if request_id is not None else None,
        )
    message = _field_from_text(text, "message")
    code = _field_from_text(text, "error_code") or _field_from_text(text, "error")
    request_id = _field_from_text(text, "request_id") or header_request_id
    if message is None and "<" in text:
        title = _TITLE.search(text)
        message = (title.group(1) if title else _TAGS.sub(" ", text)).strip()
        message = " ".join(message.split())[:200] or None
    return ErrorBody(message=message, error_code=code, request_id=request_id)


def error_for_response(response: httpx.Response) -> RefoldError:
    body = parse_error_body(response)
    status = response.status_code
    kind: type[RefoldError]
    if status == 404:
        kind, default = NotFound, "Execution not found"
    elif status in (401, 403):
        kind, default = Unauthorized, "Refold did not accept the credentials"
    elif status == 429:
        kind, default = RateLimited, "Refold's rate limit was reached"
    elif status >= 500:
        kind, default = UpstreamError, f"Refold answered HTTP {status}"
    else:
        kind, default = RequestRejected, f"Refold answered HTTP {status}"
    return kind(
        body.message or default, status_code=status, error_code=body.error_code, request_id=body.request_id
    )


class RequestGate(Protocol):
    async def acquire(self, key: str, *, again: bool = False) -> float:
        """Wait for a turn under `key`; return when (time.monotonic()) the turn was granted.
        `again`: the last turn went stale unused; ask without going to the back of the line."""
        ...


# An admission older than this when its request is about to leave means the process stalled in
# between (a busy event loop); the turn it was granted has refilled others meanwhile, so it asks again
# rather than going out bunched with them.
STALE_ADMISSION_SECONDS = 0.05
MAX_ADMISSIONS = 3


class RefoldClient:
    def __init__(
        self,
        http: httpx.AsyncClient,
        retry: RetryPolicy | None = None,
        rate_limiter: RequestGate | None = None,
    ) -> None:
        self._http = http
        self._retry = retry or RetryPolicy()
        self._rate_limiter = rate_limiter

    async def get_execution(
        self,
        creds: RefoldCredentials,
        execution_id: str,
        linked_account_id: str | None = None,
        *,
        admitted_at: float | None = None,
    ) -> Execution:
        """`admitted_at`: when (time.monotonic()) a rate-limit turn for this call was already taken
        (in the lookup's round trip before it); the first attempt then asks for none."""
        canonical = normalize_execution_id(execution_id)
        data = await self._call_json(
            "GET",
            creds,
            f"{EXECUTION_PATH}/{quote(canonical, safe='')}",
            linked_account_id,
            admitted_at=admitted_at,
        )
        if not isinstance(data, dict):
            raise MalformedResponse("Refold returned an execution that is not a JSON object")
        if not str(data.get("status") or "").strip():
            # Without a status the card could only guess; "still running" would be a guess that misleads.
            raise MalformedResponse("Refold's answer for this execution has no status")
        try:
            execution = Execution.model_validate(data)
        except ValidationError as exc:
            raise MalformedResponse(
                f"Refold returned an execution in an unexpected shape ({exc.error_count()} problems)"
            ) from None
        if execution.id is None:
            execution = execution.model_copy(update={"id": canonical})
        return execution

    async def list_executions(
        self,
        creds: RefoldCredentials,
        *,
        limit: int = 10,
        page: int = 1,
        linked_account_id: str | None = None,
        filters: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """One page of the linked account's executions, newest first; `filters` are the endpoint's
        own query parameters (status, workflow_id, workflow_name, start_date, execution_source)."""
        params: dict[str, str | int] = {"page": page, "limit": limit, **(filters or {})}
        data = await self._call_json("GET", creds, EXECUTION_PATH, linked_account_id, params=params)
        if not isinstance(data, dict):
            raise MalformedResponse("Refold returned an execution list that is not a JSON object")
        return data

    async def rerun_execution(
        self, creds: RefoldCredentials, execution_id: str, linked_account_id: str | None = None
    ) -> str:
        """Start a new run from this one's trigger; returns the new execution's ID.

        Not idempotent: a retry after a timeout or a 5xx could start a second run, so only a 429
        (refused before any work) is retried.
        """
        canonical = normalize_execution_id(execution_id)
        data = await self._call_json(
            "POST", creds, f"{EXECUTION_PATH}/{canonical}/rerun", linked_account_id, idempotent=False
        )
        # The reference page shows `instanceId`; the OpenAPI schema names it `id`.
        raw = data.get("instanceId") or data.get("id") if isinstance(data, dict) else None
        try:
            return normalize_execution_id(str(raw or ""))
        except InvalidExecutionId:
            raise MalformedResponse("Refold started a rerun but did not say which execution it is") from None

    async def stop_execution(
        self, creds: RefoldCredentials, execution_id: str, linked_account_id: str | None = None
    ) -> None:
        """Ask Refold to stop a run; asking twice is harmless, so this retries like a lookup."""
        canonical = normalize_execution_id(execution_id)
        await self._call_json("POST", creds, f"{EXECUTION_PATH}/{canonical}/stop", linked_account_id)

    async def _call_json(
        self,
        method: str,
        creds: RefoldCredentials,
        path: str,
        linked_account_id: str | None,
        *,
        params: dict[str, Any] | None = None,
        idempotent: bool = True,
        body: dict[str, Any] | None = None,
        admitted_at: float | None = None,
    ) -> Any:
        response = await self._send_with_retries(
            method, creds, path, linked_account_id, params, idempotent, body, admitted_at
        )
        if not response.content:
            raise MalformedResponse("Refold answered with an empty body", status_code=response.status_code)
        try:
            return response.json()
        except ValueError:
            raise MalformedResponse(
                "Refold answered with something that is not JSON",
                status_code=response.status_code,
                request_id=response.headers.get("x-request-id"),
            ) from None

    async def _send_with_retries(
        self,
        method: str,
        creds: RefoldCredentials,
        path: str,
        linked_account_id: str | None,
        params: dict[str, Any] | None,
        idempotent: bool = True,
        body: dict[str, Any] | None = None,
        admitted_at: float | None = None,
    ) -> httpx.Response:
        policy = self._retry
        url = creds.base_url.rstrip("/") + path
        headers = creds.headers(linked_account_id)
        attempt_no = 0
        async for attempt in stamina.retry_context(
            on=_is_retryable if idempotent else _was_refused,
            attempts=policy.attempts,
            timeout=policy.total_seconds,
            wait_initial=policy.wait_initial,
            wait_max=policy.wait_max,
            wait_jitter=policy.wait_jitter,
        ):
            with attempt:
                attempt_no += 1
                await self._admit(creds.fingerprint, admitted_at if attempt_no == 1 else None)
                return await self._send_once(method, url, path, headers, params, attempt_no, body)
        raise AssertionError("unreachable: stamina either returns or raises")  # pragma: no cover

    async def _admit(self, key: str, admitted_at: float | None = None) -> None:
        if self._rate_limiter is None:
            return
        if admitted_at is not None:
            if time.monotonic() - admitted_at <= STALE_ADMISSION_SECONDS:
                place = current_place()
                if place is not None:
                    place.granted()
                return
            # That turn was never in this process's line: it joins it, behind whoever came meanwhile.
            log.info("rate-limit turn went stale before its request left; asking again")
        for admission in range(MAX_ADMISSIONS):
            granted = await self._rate_limiter.acquire(key, again=admission > 0)
            late = time.monotonic() - granted
            if late <= STALE_ADMISSION_SECONDS:
                return
            log.info("rate-limit turn went stale after a %.0f ms pause; asking again", late * 1000)

    async def _send_once(
        self,
        method: str,
        url: str,
        path: str,
        headers: dict[str, str],
        params: dict[str, Any] | None,
        attempt_no: int,
        body: dict[str, Any] | None = None,
    ) -> httpx.Response:
        started = time.perf_counter()
        endpoint = endpoint_name(method, path)
        try:
            response = await self._http.request(method, url, headers=headers, params=params, json=body)
        except httpx.TimeoutException:
            log.warning("refold %s %s timed out (attempt %d)", method, path, attempt_no)
            metrics.REFOLD_REQUESTS.labels(endpoint, "timeout").inc()
            raise Unreachable("Refold did not answer in time") from None
        except httpx.TransportError as exc:
            log.warning(
                "refold %s %s unreachable (attempt %d): %s", method, path, attempt_no, type(exc).__name__
            )
            metrics.REFOLD_REQUESTS.labels(endpoint, "unreachable").inc()
            raise Unreachable("Refold could not be reached") from None
        elapsed = time.perf_counter() - started
        elapsed_ms = elapsed * 1000
        metrics.REFOLD_REQUESTS.labels(endpoint, str(response.status_code)).inc()
        metrics.REFOLD_SECONDS.labels(endpoint).observe(elapsed)
        log.info(
            "refold %s %s -> %d in %.0f ms (attempt %d)",
            method,
            path,
            response.status_code,
            elapsed_ms,
            attempt_no,
        )
        if response.is_success:
            return response
        if 300 <= response.status_code < 400:
            raise UpstreamError(
                f"Refold answered with a redirect (HTTP {response.status_code}), which is not followed",
                status_code=response.status_code,
            )
        raise error_for_response(response)

    async def register_webhook(
        self,
        creds: RefoldCredentials,
        url: str,
        events: list[str],
        description: str,
        workflow_ids: list[str] | None = None,
    ) -> str:
        """Subscribe `url` to `events` in the org's environment of these credentials; returns its ID.

        Not idempotent (a retry after a timeout could register it twice): only a 429 is retried.
        """
        data = await self._call_json(
            "POST",
            creds,
            WEBHOOK_PATH,
            None,
            idempotent=False,
            body={
                "webhook_url": url,
                "webhook_events": events,
                "webhook_description": description,
                # Refold then sends only these workflows' events (openapi.yaml, RegisterWebhookRequest).
                **({"workflow_ids": workflow_ids} if workflow_ids else {}),
            },
        )
        webhook_id = data.get("_id") or data.get("id") if isinstance(data, dict) else None
        if not webhook_id:
            raise MalformedResponse("Refold registered the webhook but did not say its ID")
        return str(webhook_id)[:100]

    async def update_webhook(
        self,
        creds: RefoldCredentials,
        webhook_id: str,
        events: list[str],
        workflow_ids: list[str] | None = None,
    ) -> None:
        await self._call_json(
            "PUT",
            creds,
            f"{WEBHOOK_PATH}/{quote(webhook_id, safe='')}",
            None,
            # An empty list lifts an earlier workflow filter.
            body={"webhook_events": events, "workflow_ids": workflow_ids or []},
        )

    async def workflow_ids_named(self, creds: RefoldCredentials, name: str) -> list[str]:
        """The IDs of the org's workflows called exactly `name` (any case): Refold's list searches by
        regex, so the name is escaped and the matches compared whole."""
        data = await self._call_json(
            "GET", creds, WORKFLOW_PATH, None, params={"name": re.escape(name), "limit": 50, "page": 1}
        )
        docs = data.get("docs") if isinstance(data, dict) else None
        found = []
        for doc in docs if isinstance(docs, list) else []:
            if isinstance(doc, dict) and str(doc.get("name") or "").casefold() == name.casefold():
                workflow_id = doc.get("_id") or doc.get("id")
                if isinstance(workflow_id, str) and workflow_id:
                    found.append(workflow_id[:100])
        return found

    async def delete_webhook(self, creds: RefoldCredentials, webhook_id: str) -> None:
        """Delete a subscription; one already gone (404) counts as deleted."""
        try:
            await self._call_json("DELETE", creds, f"{WEBHOOK_PATH}/{quote(webhook_id, safe='')}", None)
        except NotFound:
            log.info("the Refold webhook to delete was already gone")
