"""A loopback Refold API that follows the documented contract (shared/refold-api/).

Executions are programmable in both response generations; auth is checked in both forms;
latency, status codes and malformed bodies can be injected; every endpoint counts its calls.
"""

from __future__ import annotations

import asyncio
import collections
import copy
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiohttp import web

from tests.fakes.loopback import LoopbackServer

NOT_FOUND = {
    "status_code": 404,
    "http_error_type": "NOT_FOUND",
    "error_code": "RESOURCE_NOT_FOUND",
    "message": "Execution not found",
}
# The documented legacy 401 example, byte for byte: note the missing comma before request_id.
LEGACY_401 = """{
    "status_code": 401,
    "http_error_type": "UNAUTHORIZED",
    "error_code": "SERVER_ERROR",
    "message": "Invalid Credentials"
    "request_id": "89bd1675-a826-46cb-9210-6cb2ae169f67"
}"""


# The events Refold's webhook taxonomy documents (refold-api/webhooks.mdx).
WEBHOOK_EVENTS = frozenset(
    {
        "Connection Created",
        "Connection Deleted",
        "Connection Expired",
        "Workflow Completed",
        "Workflow Errored",
    }
)


@dataclass
class Fault:
    """One programmed answer, served instead of the real one `times` times."""

    status: int = 500
    body: str | bytes = ""
    content_type: str = "application/json"
    delay: float = 0.0
    times: int = 1
    endpoint: str | None = None  # None: any endpoint
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class StoredExecution:
    document: dict[str, Any]
    linked_account_id: str | None = None  # None: visible to every linked account
    # Successive documents served on each GET, to simulate a run that progresses; the last one sticks.
    progression: list[dict[str, Any]] = field(default_factory=list)


def running_doc(
    name: str = "Sync contacts",
    done: int = 1,
    total: int = 3,
    status: str = "RUNNING",
    linked_account_id: str = "acme",
) -> dict[str, Any]:
    nodes = []
    for i in range(total):
        if i < done:
            node_status, output = "Success", {"ok": True, "step": i}
        elif i == done and status == "RUNNING":
            node_status, output = "Waiting", None
        else:
            node_status, output = "Ready", None
        nodes.append(
            {
                "node_id": str(i + 1),
                "node_name": f"Step {i + 1}",
                "node_type": "action",
                "node_status": node_status,
                "is_batch": False,
                "attempts_made": 1 if i < done else 0,
                "execution_time": 120 * (i + 1) if i < done else 0,
                "latest_output": output,
            }
        )
    return {
        "name": name,
        "org_id": "6500a1b2c3d4e5f6a7b8c9d0",
        "environment": "test",
        "status": status,
        "completion_percentage": round(100 * done / total),
        "config_id": "cfg_1",
        "linked_account_id": linked_account_id,
        "nodes": nodes,
    }


def errored_doc(name: str = "Export contact to HubSpot", linked_account_id: str = "acme") -> dict[str, Any]:
    return {
        "name": name,
        "org_id": "6500a1b2c3d4e5f6a7b8c9d0",
        "environment": "production",
        "status": "ERRORED",
        "completion_percentage": 66,
        "config_id": "cfg_1",
        "linked_account_id": linked_account_id,
        "nodes": [
            {
                "node_id": "1",
                "node_name": "Start",
                "node_type": "start",
                "node_status": "Success",
                "is_batch": False,
                "attempts_made": 1,
                "execution_time": 403,
                "latest_output": {"message": "Workflow started successfully"},
            },
            {
                "node_id": "2",
                "node_name": "Create contact",
                "node_type": "hubspot",
                "node_status": "Errored",
                "is_batch": False,
                "attempts_made": 3,
                "execution_time": 2150,
                "latest_output": {"error": "401 Unauthorized", "detail": "HubSpot token expired"},
            },
            {
                "node_id": "3",
                "node_name": "Notify",
                "node_type": "slack",
                "node_status": "Ready",
                "is_batch": False,
                "attempts_made": 0,
                "execution_time": 0,
                "latest_output": None,
            },
        ],
    }


class FakeRefold(LoopbackServer):
    def __init__(self) -> None:
        super().__init__()
        self.api_keys: set[str] = set()
        self.session_tokens: dict[str, str] = {}  # token -> linked account
        self.executions: dict[str, StoredExecution] = {}
        self.faults: collections.deque[Fault] = collections.deque()
        self.latency: float = 0.0
        self.calls: collections.Counter[str] = collections.Counter()
        self.requests: list[dict[str, Any]] = []
        # A rerun starts a new execution: it serves these documents in turn (default: one RUNNING,
        # then COMPLETED), and (old, new) IDs are recorded.
        self.rerun_progression: list[dict[str, Any]] | None = None
        self.reruns: list[tuple[str, str]] = []
        # Hold the Nth rerun (1-based) after starting its run and before answering, until released:
        # a worker killed meanwhile has asked Refold and never heard back.
        self.hold_rerun: int | None = None
        self.rerun_held = threading.Event()
        self.release_rerun = threading.Event()
        # The org's workflows (listWorkflows): ID -> name.
        self.workflows: dict[str, str] = {}
        # Webhook subscriptions (registerWebhook), by ID, as the bot registered them.
        self.webhooks: dict[str, dict[str, Any]] = {}

    # --- programming ---------------------------------------------------

    def add_execution(
        self,
        execution_id: str,
        document: dict[str, Any],
        *,
        linked_account_id: str | None = None,
        progression: list[dict[str, Any]] | None = None,
    ) -> None:
        with self.lock:
            self.executions[execution_id] = StoredExecution(
                copy.deepcopy(document), linked_account_id, copy.deepcopy(progression or [])
            )

    def inject(self, fault: Fault) -> None:
        with self.lock:
            self.faults.append(fault)

    def reset(self) -> None:
        with self.lock:
            self.api_keys.clear()
            self.session_tokens.clear()
            self.executions.clear()
            self.faults.clear()
            self.latency = 0.0
            self.calls.clear()
            self.requests.clear()
            self.rerun_progression = None
            self.reruns.clear()
            self.hold_rerun = None
            self.rerun_held.clear()
            self.release_rerun.clear()
            self.webhooks.clear()
            self.workflows.clear()

    def count(self, endpoint: str) -> int:
        with self.lock:
            return self.calls[endpoint]

    # --- serving -------------------------------------------------------

    def build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._record])
        app.router.add_get("/api/v2/public/execution/{execution_id}", self._get_execution)
        app.router.add_get("/api/v2/public/execution", self._list_executions)
        app.router.add_post("/api/v2/public/execution/{execution_id}/rerun", self._rerun)
        app.router.add_post("/api/v2/public/execution/{execution_id}/stop", self._stop)
        app.router.add_post("/api/v2/public/session-token", self._session_token)
        app.router.add_get("/api/v2/public/webhook", self._list_webhooks)
        app.router.add_get("/api/v2/public/workflow", self._list_workflows)
        app.router.add_post("/api/v2/public/webhook", self._register_webhook)
        app.router.add_put("/api/v2/public/webhook/{webhook_id}", self._update_webhook)
        app.router.add_delete("/api/v2/public/webhook/{webhook_id}", self._delete_webhook)
        return app

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        endpoint = _endpoint_name(request)
        with self.lock:
            self.calls[endpoint] += 1
            self.requests.append(
                {
                    "endpoint": endpoint,
                    "method": request.method,
                    "path": request.path,
                    "headers": dict(request.headers),
                    "query": dict(request.query),
                    "at": time.monotonic(),
                }
            )
            latency = self.latency
            fault = self._take_fault(endpoint)
        if latency:
            await asyncio.sleep(latency)
        if fault is not None:
            if fault.delay:
                await asyncio.sleep(fault.delay)
            body = fault.body.encode() if isinstance(fault.body, str) else fault.body
            return web.Response(
                status=fault.status, body=body, content_type=fault.content_type, headers=fault.headers
            )
        return await handler(request)

    def _take_fault(self, endpoint: str) -> Fault | None:
        for fault in self.faults:
            if fault.endpoint in (None, endpoint):
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.remove(fault)
                return fault
        return None

    def _authenticate(self, request: web.Request) -> str | web.Response:
        """Return the linked account the caller acts as, or an error response."""
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            with self.lock:
                account = self.session_tokens.get(auth.removeprefix("Bearer "))
            if account is None:
                return web.Response(status=401, text=LEGACY_401, content_type="application/json")
            return account
        api_key = request.headers.get("x-api-key")
        with self.lock:
            known = api_key in self.api_keys
        if not known:
            return web.Response(status=401, text=LEGACY_401, content_type="application/json")
        account = request.headers.get("linked_account_id")
        if not account:
            return web.json_response(
                {
                    "status_code": 400,
                    "error_code": "BAD_REQUEST",
                    "http_error_type": "INVALID_LINKED_ACCOUNT_ID",
                    "message": "linked_account_id or org_id is required",
                    "request_id": str(uuid.uuid4()),
                },
                status=400,
            )
        return account

    def _find(self, request: web.Request, account: str) -> StoredExecution | None:
        with self.lock:
            stored = self.executions.get(request.match_info["execution_id"])
        if stored is None or stored.linked_account_id not in (None, account):
            return None
        return stored

    async def _get_execution(self, request: web.Request) -> web.Response:
        account = self._authenticate(request)
        if isinstance(account, web.Response):
            return account
        stored = self._find(request, account)
        if stored is None:
            return web.json_response(NOT_FOUND, status=404)
        with self.lock:
            if stored.progression:
                stored.document = stored.progression.pop(0)
            document = copy.deepcopy(stored.document)
        return web.Response(text=json.dumps(document), content_type="application/json")

    async def _list_executions(self, request: web.Request) -> web.Response:
        account = self._authenticate(request)
        if isinstance(account, web.Response):
            return account
        query = request.query
        limit, page = int(query.get("limit", "10")), int(query.get("page", "1"))
        with self.lock:
            docs = [
                {"_id": eid, **{k: v for k, v in s.document.items() if k != "nodes"}}
                for eid, s in self.executions.items()
                if s.linked_account_id in (None, account)
            ]
        # The filters openapi.yaml documents for listExecutions, as Refold applies them.
        if query.get("status", "All") != "All":
            docs = [d for d in docs if d.get("status") == query["status"]]
        if "workflow_id" in query:
            docs = [d for d in docs if _workflow_of(d)[0] == query["workflow_id"]]
        if "workflow_name" in query:
            docs = [d for d in docs if _workflow_of(d)[1] == query["workflow_name"].casefold()]
        if "start_date" in query:
            since = datetime.fromisoformat(query["start_date"].replace("Z", "+00:00"))
            docs = [d for d in docs if d.get("createdAt") and datetime.fromisoformat(d["createdAt"]) >= since]
        if query.get("execution_source", "All") != "All":
            docs = [d for d in docs if d.get("execution_source") == query["execution_source"]]
        docs.sort(key=lambda d: str(d.get("createdAt") or ""), reverse=True)
        pages = max(1, -(-len(docs) // limit))
        return web.json_response(
            {
                "docs": docs[(page - 1) * limit : page * limit],
                "totalDocs": len(docs),
                "limit": limit,
                "page": page,
                "totalPages": pages,
                "pagingCounter": (page - 1) * limit + 1,
                "hasPrevPage": page > 1,
                "hasNextPage": page < pages,
                "prevPage": page - 1 if page > 1 else None,
                "nextPage": page + 1 if page < pages else None,
            }
        )

    async def _rerun(self, request: web.Request) -> web.Response:
        account = self._authenticate(request)
        if isinstance(account, web.Response):
            return account
        stored = self._find(request, account)
        if stored is None:
            return web.json_response(NOT_FOUND, status=404)
        new_id = uuid.uuid4().hex[:24]
        with self.lock:
            running = {**copy.deepcopy(stored.document), "status": "RUNNING", "completion_percentage": 0}
            finished = {**copy.deepcopy(stored.document), "status": "COMPLETED", "completion_percentage": 100}
            progression = copy.deepcopy(self.rerun_progression or [running, finished])
            self.executions[new_id] = StoredExecution(progression[0], stored.linked_account_id, progression)
            self.reruns.append((request.match_info["execution_id"], new_id))
            hold = self.hold_rerun == len(self.reruns)
        if hold:
            self.rerun_held.set()
            await asyncio.get_running_loop().run_in_executor(None, self.release_rerun.wait, 60)
        return web.json_response({"message": "Execution queued", "instanceId": new_id})

    async def _stop(self, request: web.Request) -> web.Response:
        account = self._authenticate(request)
        if isinstance(account, web.Response):
            return account
        stored = self._find(request, account)
        if stored is None:
            return web.json_response(NOT_FOUND, status=404)
        with self.lock:
            # As Refold does: the stop is queued (STOPPING), and the run settles as STOPPED.
            stopping = {**copy.deepcopy(stored.document), "status": "STOPPING"}
            stored.progression = [stopping, {**copy.deepcopy(stored.document), "status": "STOPPED"}]
            stored.document = stopping
        return web.json_response({"message": "Stopping instance"})

    def _org_auth(self, request: web.Request) -> web.Response | None:
        """Webhooks are org-level: an org API key (or a linked account's token) is enough."""
        auth = request.headers.get("Authorization", "")
        with self.lock:
            known = request.headers.get("x-api-key") in self.api_keys or (
                auth.startswith("Bearer ") and auth.removeprefix("Bearer ") in self.session_tokens
            )
        return None if known else web.Response(status=401, text=LEGACY_401, content_type="application/json")

    async def _list_webhooks(self, request: web.Request) -> web.Response:
        refused = self._org_auth(request)
        if refused is not None:
            return refused
        with self.lock:
            return web.json_response(list(self.webhooks.values()))

    async def _register_webhook(self, request: web.Request) -> web.Response:
        refused = self._org_auth(request)
        if refused is not None:
            return refused
        body = await request.json()
        url, events = body.get("webhook_url"), body.get("webhook_events")
        if (
            not isinstance(url, str)
            or not url.startswith(("http://", "https://"))
            or not isinstance(events, list)
            or not events
            or any(e not in WEBHOOK_EVENTS for e in events)
        ):
            return web.json_response(
                {"status_code": 400, "error_code": "BAD_REQUEST", "message": "Invalid webhook"}, status=400
            )
        webhook_id = uuid.uuid4().hex[:24]
        record = {
            "_id": webhook_id,
            "org_id": "6500a1b2c3d4e5f6a7b8c9d0",
            "environment": "test",
            "is_enabled": True,
            "webhook_events": events,
            "webhook_url": url,
            "webhook_description": body.get("webhook_description", ""),
            "method": "POST",
            "webhook_type": "default",
            "workflow_ids": body.get("workflow_ids") or [],
        }
        with self.lock:
            self.webhooks[webhook_id] = record
        return web.json_response(record)

    async def _update_webhook(self, request: web.Request) -> web.Response:
        refused = self._org_auth(request)
        if refused is not None:
            return refused
        body = await request.json()
        with self.lock:
            record = self.webhooks.get(request.match_info["webhook_id"])
            if record is None:
                return web.json_response({**NOT_FOUND, "message": "Webhook not found"}, status=404)
            record.update(
                {
                    k: v
                    for k, v in body.items()
                    if k in ("webhook_events", "webhook_url", "is_enabled", "workflow_ids")
                }
            )
            return web.json_response(record)

    async def _list_workflows(self, request: web.Request) -> web.Response:
        refused = self._org_auth(request)
        if refused is not None:
            return refused
        pattern = re.compile(request.query.get("name", ""), re.IGNORECASE)  # "Regex search on workflow name"
        with self.lock:
            docs = [
                {"_id": wid, "name": name} for wid, name in self.workflows.items() if pattern.search(name)
            ]
        return web.json_response({"docs": docs, "totalDocs": len(docs), "page": 1, "hasNextPage": False})

    async def _delete_webhook(self, request: web.Request) -> web.Response:
        refused = self._org_auth(request)
        if refused is not None:
            return refused
        with self.lock:
            if self.webhooks.pop(request.match_info["webhook_id"], None) is None:
                return web.json_response({**NOT_FOUND, "message": "Webhook not found"}, status=404)
            return web.json_response(list(self.webhooks.values()))

    async def _session_token(self, request: web.Request) -> web.Response:
        with self.lock:
            known = request.headers.get("x-api-key") in self.api_keys
        if not known:
            return web.Response(status=401, text=LEGACY_401, content_type="application/json")
        body = await request.json()
        account = body.get("linked_account_id")
        if not account:
            return web.json_response(
                {
                    "status_code": 400,
                    "http_error_type": "BAD_REQUEST",
                    "error_code": "SERVER_ERROR",
                    "message": "Linked account Id is required",
                },
                status=400,
            )
        token = "st_" + uuid.uuid4().hex
        with self.lock:
            self.session_tokens[token] = account
        return web.json_response({"token": token})


def _workflow_of(doc: dict[str, Any]) -> tuple[str, str]:
    """(ID, case-folded name) of the workflow a run belongs to, in either API generation's shape."""
    legacy = doc.get("associated_workflow") or {}
    workflow_id = doc.get("workflow_id") or (legacy.get("_id") if isinstance(legacy, dict) else "") or ""
    name = doc.get("name") or (legacy.get("name") if isinstance(legacy, dict) else "") or ""
    return str(workflow_id), str(name).casefold()


def _endpoint_name(request: web.Request) -> str:
    path = request.path.rstrip("/")
    if path.endswith("/rerun"):
        return "rerun"
    if path.endswith("/stop"):
        return "stop"
    if path.endswith("/session-token"):
        return "session_token"
    if path.startswith("/api/v2/public/webhook"):
        return "webhook"
    if path == "/api/v2/public/execution":
        return "list"
    if path.startswith("/api/v2/public/execution/"):
        return "get"
    return "other"
