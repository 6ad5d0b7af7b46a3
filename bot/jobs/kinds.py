"""Every kind of background job, typed, in one explicit table.

A job carries only what its work needs: who asked, where the answer goes, and its arguments. Never
the raw Slack payload. Jobs are sealed (encrypted) before they reach Redis: see `bot.jobs.queue`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from bot.refold.webhooks import Delivery
from bot.usecases.workspace import Workspace


class Origin(BaseModel):
    """The workspace and person a job works for."""

    model_config = ConfigDict(frozen=True)

    team_id: str | None = None
    enterprise_id: str | None = None
    org_wide: bool = False
    user_id: str | None = None

    @property
    def workspace(self) -> Workspace:
        return Workspace(self.team_id, self.enterprise_id)


class ReplyTarget(BaseModel):
    """Where the answer goes: the interaction's response_url, else the channel as the bot."""

    model_config = ConfigDict(frozen=True)

    response_url: str | None = Field(default=None, repr=False)
    channel_id: str | None = None
    user_id: str | None = None
    thread_ts: str | None = None
    message_ts: str | None = None
    ephemeral: bool = True


class Target(BaseModel):
    model_config = ConfigDict(frozen=True)

    execution_id: str
    linked_account_id: str | None = None


class ShownCard(BaseModel):
    """The card a Refresh was pressed on, kept so a failed refresh can leave it in place."""

    text: str = ""
    blocks: list[dict[str, Any]] = []


class JobBase(BaseModel):
    model_config = ConfigDict(frozen=True)

    origin: Origin
    reply: ReplyTarget
    # One per Slack interaction: the queue's job key and the key of "already answered".
    interaction: str


class LookupJob(JobBase):
    kind: Literal["lookup"] = "lookup"
    target: Target
    # When the person asked (epoch seconds), so a long wait is explained on time; 0: not known.
    asked_at: float = 0.0


class RefreshJob(JobBase):
    kind: Literal["refresh"] = "refresh"
    target: Target
    shown: ShownCard | None = None
    follow_id: str | None = None  # pressed on a followed card: it stays followed


class ShareJob(JobBase):
    kind: Literal["share"] = "share"
    target: Target


# The message shortcut answers with at most this many cards, however many executions a message names.
MAX_SHORTCUT_CARDS = 5


class ShortcutJob(JobBase):
    kind: Literal["shortcut"] = "shortcut"
    targets: list[Target]  # at most MAX_SHORTCUT_CARDS
    # How many the message named in all, so the answer can say how many were left out.
    found: int


class FollowJob(JobBase):
    """Start following the card in `reply` (a Follow click, or `/execution <id> follow`)."""

    kind: Literal["follow"] = "follow"
    target: Target
    follow_id: str
    # The card is new (a command's): post it rather than replace the one clicked on.
    new_card: bool = False


class PollJob(JobBase):
    """One scheduled look at a followed run; it schedules the next until the run ends."""

    kind: Literal["poll"] = "poll"
    follow_id: str
    generation: str
    seq: int


class UnfollowJob(JobBase):
    kind: Literal["unfollow"] = "unfollow"
    target: Target
    follow_id: str


class RerunJob(JobBase):
    kind: Literal["rerun"] = "rerun"
    target: Target
    follow_id: str  # the new run's card is followed under this name


class StopJob(JobBase):
    kind: Literal["stop"] = "stop"
    target: Target
    follow_id: str  # the clicked card's follow, new or continuing


class AlertJob(JobBase):
    """A Refold webhook delivery to post in its route's channel (`reply.channel_id`)."""

    kind: Literal["alert"] = "alert"
    route_id: str
    delivery: Delivery


class IncidentUpdateJob(JobBase):
    """Bring one incident's message up to date (one per incident and few seconds, by its key)."""

    kind: Literal["incident"] = "incident"
    route_id: str
    cause: str
    deferred: int = 0  # times it moved to a later slot rather than wait for Slack's budget


IncidentAction = Literal["rerun", "snooze", "unsnooze", "resolve"]


class IncidentActionJob(JobBase):
    """A press on an incident's message: Rerun failed, Snooze (for `hours`), End snooze, Resolve."""

    kind: Literal["incident_action"] = "incident_action"
    action: IncidentAction
    route_id: str
    cause: str
    hours: int = 0


class BulkRerunJob(JobBase):
    """One part of a Rerun failed press: the incident's listed runs [start, end), each rerun once."""

    kind: Literal["bulk_rerun"] = "bulk_rerun"
    route_id: str
    cause: str
    generation: str  # the incident's episode the press was on: a new episode's runs are not rerun
    press: str  # the press's interaction: the claim on each run is made in its name
    start: int
    end: int
    upto: int  # the listed runs the press was for; the parts go on until here


class RerunWatchJob(JobBase):
    """One look at an incident's new runs: their statuses onto its message, until all have ended."""

    kind: Literal["rerun_watch"] = "rerun_watch"
    route_id: str
    cause: str
    started_at: float  # the press; the watch gives up an hour after it


class SearchJob(JobBase):
    """`/execution search` (page 1) or its Next page: `query` is the filters as typed, parsed again."""

    kind: Literal["search"] = "search"
    query: str
    page: int = 1


EndReason = Literal["time", "early", "success"]


class SnoozeEndJob(JobBase):
    """End one snooze of a route's alerts with its one line in the channel: at its time, early (an
    unsnooze), or on the success an until-success snooze waited for."""

    kind: Literal["snooze_end"] = "snooze_end"
    route_id: str
    snooze_id: str
    since: float  # the snooze this ends; a newer snooze of the same thing has its own end
    reason: EndReason
    ended_by: str | None = None
    success_of: str | None = None  # the run whose success ended it

    @classmethod
    def ending(
        cls,
        origin: Origin,
        route_id: str,
        channel_id: str,
        snooze_id: str,
        since: float,
        reason: EndReason,
        *,
        ended_by: str | None = None,
        success_of: str | None = None,
    ) -> SnoozeEndJob:
        """The job that ends one snooze for one reason: one of each, by its key."""
        return cls(
            origin=origin,
            reply=ReplyTarget(channel_id=channel_id, ephemeral=False),
            interaction=f"snooze-end:{route_id}:{snooze_id}:{since}:{reason}",
            route_id=route_id,
            snooze_id=snooze_id,
            since=since,
            reason=reason,
            ended_by=ended_by,
            success_of=success_of,
        )


class DigestJob(JobBase):
    """One day's digest of a route's alerts; it schedules the next day's before it posts."""

    kind: Literal["digest"] = "digest"
    route_id: str
    day: str  # the local date it is for, YYYY-MM-DD
    since: float  # the digest it belongs to; one turned on again has jobs of its own

    @classmethod
    def for_day(cls, origin: Origin, route_id: str, channel_id: str, since: float, day: str) -> DigestJob:
        """The one job for a route's digest on a day: its key is the route, the digest and the day."""
        return cls(
            origin=origin,
            reply=ReplyTarget(channel_id=channel_id, ephemeral=False),
            interaction=f"digest:{route_id}:{since!r}:{day}",
            route_id=route_id,
            day=day,
            since=since,
        )


class UnfurlLink(BaseModel):
    url: str
    execution_id: str


class UnfurlJob(JobBase):
    """Unfurl the Refold links of one shared message (`reply.channel_id`, `reply.message_ts`)."""

    kind: Literal["unfurl"] = "unfurl"
    links: list[UnfurlLink]
    unfurl_id: str | None = None  # links still in the message composer
    source: str | None = None


class FollowedCard(BaseModel):
    """The state of one followed message, kept (sealed) in the follow store between polls."""

    origin: Origin
    target: Target
    card: ReplyTarget  # where the card is; its response_url is the one to update it with
    requester: str | None = None
    started_at: float  # epoch seconds
    response_url_at: float = 0.0  # when Slack issued that response_url
    response_url_uses: int = 0
    response_url_dead: bool = False
    chat_update_dead: bool = False
    told_stale: bool = False  # the requester was told this card can no longer change
    fingerprint: str | None = None
    last_seq: int = 0  # the last poll that ran; a poll run again after a worker died sees it
    unchanged_polls: int = 0
    failed_polls: int = 0
    name: str | None = None
    status: str | None = None
    rerun_of: str | None = None
    shareable: bool = False

    def dumped(self) -> bytes:
        """As kept between polls: what differs from the defaults (one record per live follow)."""
        return self.model_dump_json(exclude_defaults=True).encode()


AnyJob = Annotated[
    LookupJob
    | RefreshJob
    | ShareJob
    | ShortcutJob
    | FollowJob
    | PollJob
    | UnfollowJob
    | RerunJob
    | StopJob
    | AlertJob
    | IncidentUpdateJob
    | IncidentActionJob
    | BulkRerunJob
    | RerunWatchJob
    | SearchJob
    | SnoozeEndJob
    | DigestJob
    | UnfurlJob,
    Field(discriminator="kind"),
]

_ADAPTER: TypeAdapter[AnyJob] = TypeAdapter(AnyJob)


def load_job(data: bytes | str) -> AnyJob:
    """A job from its JSON; raises pydantic's ValidationError for anything else."""
    return _ADAPTER.validate_json(data)


def dump_job(job: AnyJob) -> bytes:
    return _ADAPTER.dump_json(job)
