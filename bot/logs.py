"""Logging: every line carries the request ID and workspace, and known secrets are scrubbed."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import uuid
from collections.abc import Iterable

from saq.job import Job

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
team_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("team_id", default="-")

# Slack tokens and response_urls (capability URLs: anyone holding one can post into the channel for
# 30 minutes) are scrubbed even when nobody registered them.
_TOKEN_PATTERN = re.compile(
    r"\b(xox[abposr]-[0-9A-Za-z-]{8,}|xapp-[0-9A-Za-z-]{8,})|https://hooks\.slack(?:-gov)?\.com/[^\s'\"&)]+"
)
# Bolt and the SDK quote whole request bodies in some lines (a bad signature, an unhandled request):
# those carry response_urls, message text and user IDs. Such a line keeps its first words only.
_LIBRARY_LOGGERS = ("slack_bolt", "slack_sdk")


def _without_request_body(name: str, message: str) -> str:
    if name.startswith(_LIBRARY_LOGGERS) and ("body" in message or "{" in message):
        head = message.split("(", 1)[0].split("{", 1)[0].strip()
        return f"{head} (request body withheld)"
    return message


class SecretScrubber(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self._secrets: set[str] = set()

    def register(self, secrets: Iterable[str | None]) -> None:
        for secret in secrets:
            # Very short values would scrub ordinary words; they are not real secrets anyway.
            if secret and len(secret) >= 6:
                self._secrets.add(secret)

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, "[redacted]")
        return _TOKEN_PATTERN.sub("[redacted]", text)

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        record.team_id = team_id_var.get()
        message = _without_request_body(record.name, record.getMessage())
        scrubbed = self.scrub(message)
        if record.exc_info:
            # Tracebacks are formatted later; pre-render and scrub them here so nothing escapes.
            formatted = logging.Formatter().formatException(record.exc_info)
            scrubbed = f"{scrubbed}\n{self.scrub(formatted)}"
            record.exc_info = None
            record.exc_text = None
        record.msg = scrubbed
        record.args = None
        return True


scrubber = SecretScrubber()


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(
            {
                "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
                "level": record.levelname,
                "logger": record.name,
                "request_id": getattr(record, "request_id", "-"),
                "team_id": getattr(record, "team_id", "-"),
                "message": record.getMessage(),
            }
        )


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [req=%(request_id)s team=%(team_id)s] %(message)s"


def _short_job(arg: object) -> object:
    # saq's repr of a job holds the previous attempt's whole traceback (its `error` field).
    if isinstance(arg, Job):
        return f"Job<{arg.key}, attempt {arg.attempts}>"
    return arg


class OneLine(logging.Filter):
    """A library's traceback about a job becomes one line naming the exception: the bot logs its own
    failures, with the traceback where it helps (`bot.slack.handlers.runner`), and retries are expected."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_short_job(arg) for arg in record.args)
        if record.exc_info and record.exc_info[1] is not None:
            record.msg = f"{record.getMessage()}: {type(record.exc_info[1]).__name__}"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True


def configure_logging(level: str = "INFO", fmt: str = "text", secrets: Iterable[str | None] = ()) -> None:
    scrubber.register(secrets)
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(scrubber)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Library loggers log request URLs and headers at DEBUG; keep them at WARNING.
    # saq logs every job at INFO, with the queue's connection details: the bot logs its own lines.
    for noisy in ("httpx", "httpcore", "slack_sdk", "slack_bolt", "asyncio", "uvicorn.access", "saq"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    saq_logger = logging.getLogger("saq")
    if not any(isinstance(f, OneLine) for f in saq_logger.filters):
        saq_logger.addFilter(OneLine())


def new_request_id() -> str:
    return uuid.uuid4().hex[:12]


def bind_request(team_id: str | None, request_id: str | None = None) -> None:
    request_id_var.set(request_id or new_request_id())
    team_id_var.set(team_id or "-")
