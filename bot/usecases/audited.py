"""One line in a workspace's audit log for a change someone made (alerts, snoozes, digests)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from bot.store.audit import AuditEntry, AuditLog
from bot.store.errors import StoreUnavailable
from bot.usecases.workspace import Workspace

log = logging.getLogger(__name__)


async def audited(audit: AuditLog, workspace: Workspace, who: str | None, action: str, detail: str) -> None:
    """Recorded, or logged as missing: a change is not undone because its audit line could not be kept."""
    try:
        await audit.append(
            workspace.label,
            AuditEntry(
                at=datetime.now(UTC),
                who=who or "cli",
                action=action,
                execution_id="",
                result="ok",
                detail=detail,
            ),
        )
    except StoreUnavailable:
        log.warning("could not record %s in the audit log: Redis unavailable", action)
