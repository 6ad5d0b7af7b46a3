"""The comparison: a bare Bolt AsyncApp on Bolt's default path, served like the bot. `/execution` only
acks; with `BARE_RESPOND=1` it also posts a static card through `respond()`, the floor of any Bolt
bot that replies. `/floor` is a plain route that measures HTTP, Starlette and the load generator."""

from __future__ import annotations

import os
import sys

import uvicorn
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

app = AsyncApp(
    signing_secret=os.environ["SLACK_SIGNING_SECRET"],
    client=AsyncWebClient(token=os.environ["SLACK_BOT_TOKEN"], base_url=os.environ["SLACK_API_URL"]),
)


STATIC_CARD = [
    {"type": "header", "text": {"type": "plain_text", "text": "Export contact to HubSpot"}},
    {"type": "section", "text": {"type": "mrkdwn", "text": "*Status:* ERRORED\n*Progress:* 60%"}},
]


@app.command("/execution")
async def ack_only(ack, respond) -> None:
    await ack()
    if os.environ.get("BARE_RESPOND") == "1":
        await respond(text="Export contact to HubSpot: ERRORED", blocks=STATIC_CARD)


handler = AsyncSlackRequestHandler(app)


async def events(request: Request) -> Response:
    return await handler.handle(request)


async def healthz(request: Request) -> Response:
    return Response("ok")


async def floor(request: Request) -> Response:
    await request.body()
    return Response("")


web = Starlette(
    routes=[
        Route("/slack/events", events, methods=["POST"]),
        Route("/healthz", healthz),
        Route("/floor", floor, methods=["POST"]),
    ]
)

if __name__ == "__main__":
    uvicorn.run(web, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
