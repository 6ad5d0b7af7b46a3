"""Lookup -> card, or lookup -> friendly error text. The one place surfaces turn failures into words."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.lookup import LookupResult
from bot.refold.errors import DisallowedBaseUrl, RefoldError
from bot.refold.ids import InvalidExecutionId, InvalidLinkedAccount
from bot.render.blocks import Card, CardBudget, render_execution
from bot.render.messages import describe_error
from bot.slack.env import SlackEnv
from bot.store.errors import CorruptCredentials, NotConnected, StoreUnavailable
from bot.workspace import Workspace

log = logging.getLogger(__name__)

EXPECTED_FAILURES = (
    RefoldError,
    InvalidExecutionId,
    InvalidLinkedAccount,
    NotConnected,
    CorruptCredentials,
    StoreUnavailable,
    DisallowedBaseUrl,
)


@dataclass(frozen=True)
class Outcome:
    result: LookupResult | None
    error: str | None


async def fetch(env: SlackEnv, workspace: Workspace, execution_id: str, account: str | None) -> Outcome:
    try:
        return Outcome(await env.deps.lookup.lookup(workspace, execution_id, account), None)
    except EXPECTED_FAILURES as exc:
        detail = f": {exc}" if isinstance(exc, StoreUnavailable) else ""
        log.info("lookup of %s failed: %s%s", execution_id[:40], type(exc).__name__, detail)
        return Outcome(None, describe_error(exc))
    except Exception:
        log.exception("lookup of %s failed unexpectedly", execution_id[:40])
        return Outcome(None, describe_error(RuntimeError()))


def card_of(
    env: SlackEnv,
    result: LookupResult,
    *,
    shareable: bool,
    note: str | None = None,
    budget: CardBudget | None = None,
) -> Card:
    return render_execution(
        result.execution,
        now=env.clock(),
        linked_account_id=result.linked_account_id,
        shareable=shareable,
        note=note,
        budget=budget,
    )
