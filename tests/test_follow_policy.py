"""When a followed run is looked at next, and what counts as a change worth an update."""

from __future__ import annotations

import pytest

from bot.parse import InvalidCommand, LookupCommand, VerbCommand, parse_command
from bot.refold.models import Execution
from bot.usecases.follow import fingerprint, next_delay, next_poll_at
from tests.fakes.refold import running_doc

A = "65410cf6cdf931a12d7ab009"


def test_polls_start_every_five_seconds_and_back_off_to_a_minute() -> None:
    delays = [next_delay(n, 5.0) for n in range(30)]
    assert delays[:6] == [5.0] * 6
    assert delays == sorted(delays)  # never faster while nothing changes
    assert delays[-1] == 60.0 and max(delays) == 60.0
    assert next_delay(0, 5.0) == 5.0  # a change brings it back to the start


@pytest.mark.parametrize("now", [1000.0, 1000.2, 1003.9, 1004.99])
def test_polls_land_on_a_shared_grid_so_follows_of_one_run_poll_together(now: float) -> None:
    at = next_poll_at(now, 5.0, 5.0)
    assert at % 5 == 0 and now + 5 <= at < now + 10


def test_the_fingerprint_ignores_nothing_the_card_shows_and_nothing_else_matters() -> None:
    base = Execution.model_validate(running_doc(done=1))
    assert fingerprint(base) == fingerprint(Execution.model_validate(running_doc(done=1)))
    assert fingerprint(base) != fingerprint(Execution.model_validate(running_doc(done=2)))
    moved = running_doc(done=1)
    moved["nodes"][0]["attempts_made"] = 2
    assert fingerprint(base) != fingerprint(Execution.model_validate(moved))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"{A} follow", LookupCommand(A, None, True)),
        (f"{A} FOLLOW", LookupCommand(A, None, True)),
        (f"{A} acme follow", LookupCommand(A, "acme", True)),
        (f"{A} acme", LookupCommand(A, "acme", False)),
        ("following", VerbCommand("following")),
    ],
)
def test_follow_words_in_the_command(text: str, expected: object) -> None:
    assert parse_command(text) == expected


@pytest.mark.parametrize("text", [f"{A} acme x follow", "following now", "follow"])
def test_follow_words_in_the_wrong_place_are_refused(text: str) -> None:
    assert isinstance(parse_command(text), InvalidCommand)
