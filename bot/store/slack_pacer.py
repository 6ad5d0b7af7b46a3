"""Paces every Slack Web API call within Slack's published limits, across every bot process.

Source: https://api.slack.com/docs/rate-limits (also https://docs.slack.dev/apis/web-api/rate-limits):
limits apply per method, per app, per workspace, in tiers (Tier 1 1+/min, Tier 2 20+/min, Tier 3 50+/min,
Tier 4 100+/min); "special" methods have their own, chat.postMessage about 1 message per second per
channel with short bursts allowed (plus a workspace-wide limit Slack does not publish).

Each method's tier, from its reference page (https://api.slack.com/methods/<method>, or its copy at
https://docs.slack.dev/reference/methods/<method>); † marks a tier taken from earlier notes and not
re-read on the method's page when this table was written:

| method                 | Slack's tier                          | budget here, keyed by        |
|------------------------|---------------------------------------|------------------------------|
| chat.postMessage       | special: ~1/s per channel, bursts     | PER_CHANNEL, workspace+channel |
| chat.postEphemeral     | Tier 4 †; treated like postMessage    | PER_CHANNEL, workspace+channel |
| chat.update            | Tier 3                                | TIER_3, workspace+method     |
| chat.delete            | Tier 3 †                              | TIER_3                       |
| chat.unfurl            | Tier 3 †                              | TIER_3                       |
| chat.getPermalink      | special (hundreds/min; Tier 4-like)   | TIER_4                       |
| conversations.open     | Tier 3 †                              | TIER_3                       |
| reactions.add          | Tier 3 †                              | TIER_3                       |
| views.open/update/push | Tier 4 (views.update †)               | TIER_4                       |
| views.publish          | Tier 4                                | TIER_4                       |
| users.info             | Tier 4 †                              | TIER_4                       |
| usergroups.list        | Tier 2                                | TIER_2                       |
| usergroups.users.list  | Tier 2                                | TIER_2                       |
| auth.test              | special ("hundreds per minute")       | TIER_4                       |
| anything else          | unknown                               | TIER_3 (see below)           |

An unknown method gets Tier 3: most methods the bot could grow into are Tier 2 or 3, and Tier 3 neither
starves a Tier 4 method nor overruns a Tier 2 one by more than about twice (45/min against 20/min) until
Slack's first 429, which `hold` then honours. A new method belongs in the table.

Budgets sit a little under Slack's, because a turn is counted here when granted but by Slack when the
request lands, after a hop whose delay varies (see REFOLD_RATES in ratelimit.py for the measurement).

`turn` never refuses unless its caller gave a deadline: nothing is dropped. A caller that would rather
merge its work (one summary instead of ten cards), or come back later than hold a worker slot in the
line, asks `estimate` first, or passes a deadline and hears TurnTooLate.

When Slack answers 429 anyway (another app on the workspace, a limit Slack does not publish), the caller
passes its Retry-After to `hold`: every process then waits until it has passed before its next turn
under that budget.

The `workspace` argument must be a non-secret name for the installation, such as a short hash of the
bot token; never the token itself. It becomes part of Redis key names. Arguments shaped like a Slack
token (xox…, xapp…) are refused with ValueError, whose message quotes nothing of them.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping

import redis.asyncio as aioredis
from pyrate_limiter import Duration, Rate

from bot.store import keys
from bot.store.rate_lines import RedisRateLine


class Budget(enum.Enum):
    PER_CHANNEL = "per-channel"
    TIER_1 = "tier-1"
    TIER_2 = "tier-2"
    TIER_3 = "tier-3"
    TIER_4 = "tier-4"


# Slack's figure, then ours: 60/min → 50/min with 3 at once; 1+/min → 1/min; 20+ → 18; 50+ → 45; 100+ → 90.
DEFAULT_BUDGETS: Mapping[Budget, list[Rate]] = {
    Budget.PER_CHANNEL: [Rate(50, Duration.MINUTE, burst=3)],
    Budget.TIER_1: [Rate(1, Duration.MINUTE, burst=1)],
    Budget.TIER_2: [Rate(18, Duration.MINUTE, burst=3)],
    Budget.TIER_3: [Rate(45, Duration.MINUTE, burst=5)],
    Budget.TIER_4: [Rate(90, Duration.MINUTE, burst=10)],
}

METHOD_BUDGETS: Mapping[str, Budget] = {
    "chat.postMessage": Budget.PER_CHANNEL,
    "chat.postEphemeral": Budget.PER_CHANNEL,
    "chat.update": Budget.TIER_3,
    "chat.delete": Budget.TIER_3,
    "chat.unfurl": Budget.TIER_3,
    "chat.getPermalink": Budget.TIER_4,
    "conversations.open": Budget.TIER_3,
    "reactions.add": Budget.TIER_3,
    "views.open": Budget.TIER_4,
    "views.update": Budget.TIER_4,
    "views.push": Budget.TIER_4,
    "views.publish": Budget.TIER_4,
    "users.info": Budget.TIER_4,
    "usergroups.list": Budget.TIER_2,
    "usergroups.users.list": Budget.TIER_2,
    "auth.test": Budget.TIER_4,
}

UNKNOWN_METHOD_BUDGET = Budget.TIER_3

# Channel IDs (C…, D…, G…) and short hashes fit; a token's dashes would too, hence the prefix check.
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_METHOD = re.compile(r"[A-Za-z]+(\.[A-Za-z]+)+")
_TOKEN_PREFIXES = ("xox", "xapp")
# postMessage without a channel (never expected) still gets a budget of its own, not the workspace's.
_NO_CHANNEL = "-"


class SlackPacer:
    def __init__(
        self,
        redis: aioredis.Redis,
        budgets: Mapping[Budget, list[Rate]] | None = None,
    ) -> None:
        """`budgets` replaces some of DEFAULT_BUDGETS (tests use small ones)."""
        self._budgets = {**DEFAULT_BUDGETS, **(budgets or {})}
        self._line = RedisRateLine(redis, keys.slack_pace, hold_key=keys.slack_hold, name="Slack pacer")

    def key(self, workspace: str, method: str, channel: str | None) -> str:
        """The budget a call counts against: workspace+method+channel for per-channel methods,
        workspace+method otherwise. Raise ValueError for a malformed or token-shaped argument."""
        _check(workspace, _NAME, "workspace")
        _check(method, _METHOD, "method")
        if self._budget(method) is not Budget.PER_CHANNEL:
            return f"{workspace}:{method}"
        if channel is None:
            return f"{workspace}:{method}:{_NO_CHANNEL}"
        _check(channel, _NAME, "channel")
        return f"{workspace}:{method}:{channel}"

    async def turn(
        self, workspace: str, method: str, channel: str | None, *, deadline: float | None = None
    ) -> None:
        """Wait, behind this process's earlier calls under the same budget, until the call may go.
        Raise TurnTooLate when the turn would come past `deadline` (time.monotonic()): nothing is
        counted, the caller does its work later."""
        await self._line.take(self.key(workspace, method, channel), self._rates(method), deadline=deadline)

    async def hold(self, workspace: str, method: str, channel: str | None, retry_after: float) -> None:
        """Slack said Retry-After: no process takes a turn under this budget for `retry_after` s."""
        await self._line.hold(self.key(workspace, method, channel), retry_after)

    def waiting(self, workspace: str, method: str, channel: str | None) -> int:
        """Calls under this budget waiting in this process."""
        return self._line.waiting(self.key(workspace, method, channel))

    async def estimate(self, workspace: str, method: str, channel: str | None) -> float:
        """Seconds a call made now would wait: this process's line, a hold, and what every process has
        spent of the budget (other processes' waiting lines are not seen). 0 when Redis is down."""
        return await self._line.estimate(self.key(workspace, method, channel), self._rates(method))

    def _budget(self, method: str) -> Budget:
        return METHOD_BUDGETS.get(method, UNKNOWN_METHOD_BUDGET)

    def _rates(self, method: str) -> list[Rate]:
        return self._budgets[self._budget(method)]


def _check(value: str, shape: re.Pattern[str], what: str) -> None:
    # The message names the argument, never its value: the value may be the secret it must not be.
    if not shape.fullmatch(value) or value.lower().startswith(_TOKEN_PREFIXES):
        raise ValueError(f"SlackPacer: {what} must be a short non-secret name (a hash, an ID)")
