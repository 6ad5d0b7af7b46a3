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
