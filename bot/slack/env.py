"""What every Slack listener module receives from `build_app`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from bot.deps import Deps
from bot.jobs import JobQueue
from bot.store.installations import RedisInstallationStore
from bot.tasks import BackgroundTasks


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class SlackEnv:
    deps: Deps
    tasks: BackgroundTasks
    installations: RedisInstallationStore | None = None  # OAuth mode only
    jobs: JobQueue | None = None  # hands slow work to `python -m bot worker` when one is running
    clock: Callable[[], datetime] = field(default=utc_now)
