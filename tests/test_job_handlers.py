"""Every kind of job has exactly one handler, and no two kinds share one."""

from __future__ import annotations

import typing

from bot.jobs.kinds import AnyJob
from bot.slack.handlers.by_kind import handler_for


def test_every_job_kind_has_exactly_one_handler_of_its_own() -> None:
    union = typing.get_args(AnyJob)[0]
    kinds = typing.get_args(union)
    assert len(kinds) >= 12
    handlers = {}
    for kind in kinds:
        job = kind.model_construct()
        bound = handler_for(job)
        assert bound.keywords == {"job": job}  # type: ignore[attr-defined]
        handlers[kind.model_fields["kind"].default] = bound.func  # type: ignore[attr-defined]
    assert len(set(handlers.values())) == len(kinds), handlers
