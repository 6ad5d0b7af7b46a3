"""The same job as the bot, written the way Bolt's and httpx's docs suggest: ack, fetch the execution
with a new `httpx.AsyncClient`, build the card with slack_sdk's Block Kit models, `respond()`.

    python bench/naive_app.py PORT    # env: SLACK_SIGNING_SECRET, SLACK_BOT_TOKEN, SLACK_API_URL,
                                      #      REFOLD_API_URL, NAIVE_API_KEY

One API key for every workspace, no cache, no rate limit, no retries: the least a working bot does.
"""

from __future__ import annotations

import os
import sys

import httpx
import uvicorn
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.models.blocks import ContextBlock, DividerBlock, HeaderBlock, MarkdownTextObject, SectionBlock
from slack_sdk.web.async_client import AsyncWebClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

app = AsyncApp(
    signing_secret=os.environ["SLACK_SIGNING_SECRET"],
    client=AsyncWebClient(token=os.environ["SLACK_BOT_TOKEN"], base_url=os.environ["SLACK_API_URL"]),
)
REFOLD = os.environ["REFOLD_API_URL"]
KEY = os.environ["NAIVE_API_KEY"]


@app.command("/execution")
async def lookup(ack, command, respond) -> None:
    await ack()
    execution_id = command["text"].strip()
    async with httpx.AsyncClient() as http:
        response = await http.get(
            f"{REFOLD}/api/v2/public/execution/{execution_id}",
            headers={"x-api-key": KEY, "linked_account_id": "acme"},
        )
    if response.status_code != 200:
        await respond(text=f"Refold answered HTTP {response.status_code}")
        return
    doc = response.json()
    blocks = [
        HeaderBlock(text=f"{doc.get('name')} · {doc.get('status')}"),
        SectionBlock(text=MarkdownTextObject(text=f"*Status:* {doc.get('status')}")),
        DividerBlock(),
    ]
    for node in doc.get("nodes") or []:
        blocks.append(
            SectionBlock(
                text=MarkdownTextObject(
                    text=f"*{node.get('node_name')}* · {node.get('node_status')} · {node.get('attempts')} att"
                )
            )
        )
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=f"`{execution_id}`")]))
    await respond(text=f"{doc.get('name')}: {doc.get('status')}", blocks=blocks)


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
