"""Immediate answers from listeners (usage, refusals, prompts), sent after the ack in tracked tasks."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

import httpx
from slack_sdk.web.async_client import AsyncWebClient

from bot.jobs.kinds import ReplyTarget
from bot.slack.reply import Reply
from bot.tasks import BackgroundTasks


class Responder:
    def __init__(self, http: httpx.AsyncClient, tasks: BackgroundTasks) -> None:
        self._http = http
        self._tasks = tasks

    def to(self, client: AsyncWebClient, target: ReplyTarget) -> Reply:
        return Reply(self._http, client, target)

    def later(self, work: Coroutine[Any, Any, Any], name: str) -> None:
        self._tasks.spawn(work, name)

    def tell(self, client: AsyncWebClient, target: ReplyTarget, text: str) -> None:
        """A short private note beside the message the person clicked on, leaving that message as is."""
        reply = self.to(client, target)
        self.later(reply.send(response_type="ephemeral", replace_original=False, text=text), "note")
