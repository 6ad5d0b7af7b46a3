"""Every kind of background job, typed, in one explicit table.

A job carries only what its work needs: who asked, where the answer goes, and its arguments. Never
the raw Slack payload. Jobs are sealed (encrypted) before they reach Redis: see `bot.jobs.queue`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

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


class RefreshJob(JobBase):
    kind: Literal["refresh"] = "refresh"
    target: Target
    shown: ShownCard | None = None


class ShareJob(JobBase):
    kind: Literal["share"] = "share"
    target: Target


class ShortcutJob(JobBase):
    kind: Literal["shortcut"] = "shortcut"
    targets: list[Target]
    # How many the message named in all, so the answer can say how many were left out.
    found: int


AnyJob = Annotated[LookupJob | RefreshJob | ShareJob | ShortcutJob, Field(discriminator="kind")]

# The table of kinds. Adding a kind means adding it here and a handler in `bot.slack.jobs`.
JOB_KINDS: dict[str, type[JobBase]] = {
    "lookup": LookupJob,
    "refresh": RefreshJob,
    "share": ShareJob,
    "shortcut": ShortcutJob,
}

_ADAPTER: TypeAdapter[AnyJob] = TypeAdapter(AnyJob)


def load_job(data: bytes | str) -> AnyJob:
    """A job from its JSON; raises pydantic's ValidationError for anything else."""
    return _ADAPTER.validate_json(data)


def dump_job(job: AnyJob) -> bytes:
    return _ADAPTER.dump_json(job)
