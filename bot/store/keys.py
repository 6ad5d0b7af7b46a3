"""Every Redis key the bot writes, named in one place.

Application keys live under `refold-bot:`; the job queue's keys are saq's own, under `saq:refold-bot:`
and `saq:job:refold-bot:` (the queue is named JOB_QUEUE).
"""

from __future__ import annotations

NAMESPACE = "refold-bot"
JOB_QUEUE = NAMESPACE
NONE = "none"


def credentials(scope: str, scope_id: str) -> str:
    """One workspace's (or Grid org's) Refold credentials, one Fernet token."""
    return f"{NAMESPACE}:creds:{scope}:{scope_id}"


CREDENTIALS_PATTERN = f"{NAMESPACE}:creds:*"


def linked_accounts(scope: str, scope_id: str) -> str:
    """Linked accounts recent lookups used (a bounded sorted set)."""
    return f"{NAMESPACE}:linked-accounts:{scope}:{scope_id}"


def execution_cache(flight: str) -> str:
    """A fetched execution, encrypted; `flight` names credentials, account and execution, no secret."""
    return f"{NAMESPACE}:exec:{flight}"


def fetch_lease(flight: str) -> str:
    """Held by the one process fetching `flight` from Refold."""
    return f"{NAMESPACE}:lease:{flight}"


def rate_limit(fingerprint: str) -> str:
    """GCRA state of one Refold key."""
    return f"{NAMESPACE}:ratelimit:{fingerprint}"


def installation_prefix(enterprise_id: str | None, team_id: str | None) -> str:
    """Slack installations: `{prefix}:bot`, `{prefix}:installer-latest`, `{prefix}:installer-U…`."""
    return f"{NAMESPACE}:install:{enterprise_id or NONE}:{team_id or NONE}"


def oauth_state(state: str) -> str:
    return f"{NAMESPACE}:oauth-state:{state}"


def token_rotation_lock(installation: str) -> str:
    return f"{NAMESPACE}:rotate:{installation}"


def delivered(interaction: str) -> str:
    """Set once an interaction's answer reached Slack, so a re-run job never answers twice."""
    return f"{NAMESPACE}:delivered:{interaction}"


def delivery_claim(name: str) -> str:
    """Which job sends an answer that several jobs may reach at once (the polls of one follow)."""
    return f"{NAMESPACE}:claim:{name}"


def follow(follow_id: str) -> str:
    """One followed message: its generation (plain) and its state (one Fernet token)."""
    return f"{NAMESPACE}:follow:{follow_id}"


def follows_live() -> str:
    """Every workspace's follows, scored by when each lapses: what the active-follows gauge counts."""
    return f"{NAMESPACE}:follows-live"


def follows_of(workspace: str) -> str:
    """A workspace's active follows (a sorted set scored by when each started)."""
    return f"{NAMESPACE}:follows:{workspace}"


def audit(workspace: str) -> str:
    """A workspace's audit log: a capped stream of reruns, stops and connects."""
    return f"{NAMESPACE}:audit:{workspace}"


def action_done(action: str) -> str:
    """Set once a rerun or stop reached Refold, so a re-run job does not send it again."""
    return f"{NAMESPACE}:action-done:{action}"


def alert_route(route_id: str) -> str:
    """One alert route: where a Refold webhook's events go, and which ones (JSON)."""
    return f"{NAMESPACE}:route:{route_id}"


def alert_routes_of(workspace: str) -> str:
    """A workspace's alert routes: a hash of channel ID to route ID (one route per channel)."""
    return f"{NAMESPACE}:routes:{workspace}"


def seen(kind: str, name: str) -> str:
    """Set by the first delivery of a webhook event or a Slack event, so a redelivery acts once."""
    return f"{NAMESPACE}:seen:{kind}:{name}"


def incident(route_id: str, cause: str) -> str:
    """One cause's failures in one alert route: its single card or its incident (a hash; with its
    accounts, runs, thread batches and reruns beside it, under this name and a suffix)."""
    return f"{NAMESPACE}:incident:{route_id}:{cause}"


def incident_decision(route_id: str, alert: str) -> str:
    """What one alert's failure was decided to be (card, open, join, held), so a job run again after
    its worker died counts nothing twice. Short-lived: only a job's own retries read it."""
    return f"{NAMESPACE}:incident-decision:{route_id}:{alert}"


def cause_snooze(route_id: str, cause: str) -> str:
    """A snoozed cause in one route (a hash: until, by, held), expiring when the snooze ends."""
    return f"{NAMESPACE}:cause-snooze:{route_id}:{cause}"


def alert_history(route_id: str, subject: str) -> str:
    """One workflow's deliveries for one linked account in one route (`subject`: a hash of both), a
    sorted set of `<status>:<execution>` by time: first failure or repeat."""
    return f"{NAMESPACE}:alert-history:{route_id}:{subject}"


def cause_episodes(route_id: str, cause: str) -> str:
    """When each episode of a cause began in one route (a sorted set, 14 days): a repeat or a first."""
    return f"{NAMESPACE}:cause-episodes:{route_id}:{cause}"


def alert_snooze(route_id: str, snooze_id: str) -> str:
    """One snooze of a route's alerts, of a workflow or a linked account (a hash; its held runs in a
    list beside it, under `:held`)."""
    return f"{NAMESPACE}:alert-snooze:{route_id}:{snooze_id}"


def alert_snoozes_of(route_id: str) -> str:
    """A route's snoozes (a set of snooze IDs), for listing them."""
    return f"{NAMESPACE}:alert-snoozes:{route_id}"


def incidents_of(route_id: str) -> str:
    """A route's incidents: their causes, scored by their latest failure (a sorted set)."""
    return f"{NAMESPACE}:incidents:{route_id}"


def recent_lookups(workspace: str) -> str:
    """A workspace's latest lookups, newest first (a capped list), for its App Home."""
    return f"{NAMESPACE}:recent:{workspace}"


def slack_pace(scope: str) -> str:
    """GCRA state of one Slack Web API budget; `scope` is a workspace hash, method and maybe channel."""
    return f"{NAMESPACE}:slack-pace:{scope}"


def slack_hold(scope: str) -> str:
    """When Slack's Retry-After for one budget ends (epoch ms): no process calls under it before."""
    return f"{NAMESPACE}:slack-hold:{scope}"


def daily_counts(route_id: str, bucket: int) -> str:
    """A route's deliveries in one quarter hour (`bucket`: its start, epoch seconds), as counters by
    workflow, cause and account (a hash; the runs counted in a set beside it, under `:runs`), 14 days."""
    return f"{NAMESPACE}:daily-counts:{route_id}:{bucket}"


def digest(route_id: str) -> str:
    """A route's daily digest: its local time, zone, quiet-day choice, who set it (a hash)."""
    return f"{NAMESPACE}:digest:{route_id}"


def digests() -> str:
    """The routes that have a daily digest (a set of route IDs), for the upkeep that keeps each one's
    next job scheduled."""
    return f"{NAMESPACE}:digests"


def digest_sent(route_id: str, day: str) -> str:
    """Whether one day's digest of a route went to Slack (`day`: its local date), claimed just before
    it is sent, for two days."""
    return f"{NAMESPACE}:digest-sent:{route_id}:{day}"
