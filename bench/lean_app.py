"""The fair floor for a card: what any correct lookup must do, and nothing more.

    python bench/lean_app.py PORT    # env: SLACK_SIGNING_SECRET, SLACK_BOT_TOKEN, SLACK_API_URL,
                                     #      REFOLD_API_URL, LEAN_API_KEY

A Bolt AsyncApp that acks at once (`process_before_response=True`, the work in a tracked task), makes
one Refold GET on one shared httpx.AsyncClient (on aiohttp's transport, as the bot's is, so the two
differ by what the bot does, not by their HTTP stack), builds a card of plain dicts and makes one
POST to the response_url. No Redis: no cache, no single flight, no rate limit, no answered-once, so
it is correct in one process only.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from typing import Any

import httpx
import uvicorn
from httpx_aiohttp import AiohttpTransport
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

log = logging.getLogger("lean")

app = AsyncApp(
    signing_secret=os.environ["SLACK_SIGNING_SECRET"],
    client=AsyncWebClient(token=os.environ["SLACK_BOT_TOKEN"], base_url=os.environ["SLACK_API_URL"]),
    process_before_response=True,
)
REFOLD = os.environ["REFOLD_API_URL"]
HEADERS = {"x-api-key": os.environ["LEAN_API_KEY"], "linked_account_id": "acme"}
_http: httpx.AsyncClient | None = None
_tasks: set[asyncio.Task[None]] = set()


def http() -> httpx.AsyncClient:
    # Built on the server's loop, at the first request: aiohttp's session binds to the running loop.
    global _http
    if _http is None:
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)
        _http = httpx.AsyncClient(transport=AiohttpTransport(limits=limits), limits=limits, timeout=10)
    return _http


def card(execution_id: str, doc: dict[str, Any]) -> list[dict[str, Any]]:
    def mrkdwn(text: str) -> dict[str, str]:
        return {"type": "mrkdwn", "text": text}

    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": f"{doc.get('name')}"[:150]}},
        {
            "type": "section",
            "text": mrkdwn(f"*Status:* {doc.get('status')}\n*Progress:* {doc.get('completion_percentage')}%"),
        },
        {"type": "divider"},
    ]
    for node in (doc.get("nodes") or [])[:40]:
        blocks.append(
            {
                "type": "section",
                "text": mrkdwn(
                    f"*{node.get('node_name')}* · {node.get('node_status')} · "
                    f"{node.get('attempts_made')} attempts"
                ),
            }
        )
    blocks.append({"type": "context", "elements": [mrkdwn(f"`{execution_id}`")]})
    return blocks


async def answer(execution_id: str, response_url: str) -> None:
    client = http()
    try:
        response = await client.get(f"{REFOLD}/api/v2/public/execution/{execution_id}", headers=HEADERS)
        if response.status_code == 200:
            doc = response.json()
            message: dict[str, Any] = {
                "response_type": "ephemeral",
                "text": f"{doc.get('name')}: {doc.get('status')}",
                "blocks": card(execution_id, doc),
            }
        else:
            message = {"response_type": "ephemeral", "text": f"Refold answered HTTP {response.status_code}"}
        await client.post(response_url, json=message)
    except httpx.HTTPError:
        # Nobody awaits this task: its failure is only seen here.
        log.exception("lookup of %s failed", execution_id)


@app.command("/execution")
async def lookup(ack: Any, command: dict[str, Any]) -> None:
    await ack()
    task = asyncio.create_task(answer(command["text"].strip(), command["response_url"]))
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


handler = AsyncSlackRequestHandler(app)


async def events(request: Request) -> Response:
    return await handler.handle(request)


async def healthz(request: Request) -> Response:
    return Response("ok")


web = Starlette(routes=[Route("/slack/events", events, methods=["POST"]), Route("/healthz", healthz)])

if __name__ == "__main__":
    uvicorn.run(
        web, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False, http="httptools"
    )
