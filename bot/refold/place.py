"""A request's place in its API key's line at the Refold rate limit, for telling the person waiting.

The rate limiter serves each key's requests in the order they came. A job that wants to say "3 ahead
of yours" opens a `Place` around its Refold calls (`watch_place`); the limiter fills it in while the
request waits and empties it when the request's turn comes. A context variable carries it, so the
use case and the client in between need not know.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar


class Place:
    def __init__(self) -> None:
        self._ahead: Callable[[], int] | None = None
        self._with_refold = False

    def waiting(self, ahead: Callable[[], int] | None) -> None:
        """For the limiter: while the request waits, `ahead` counts those before it; None once served."""
        self._ahead = ahead
        self._with_refold = False

    def granted(self) -> None:
        """For the limiter: the request's turn came, so it is Refold's to answer now."""
        self._with_refold = True

    @property
    def ahead(self) -> int | None:
        """How many requests under the same key are ahead of this one; None when it is not waiting."""
        return self._ahead() if self._ahead is not None else None

    @property
    def with_refold(self) -> bool:
        """The request was sent to Refold (it is not waiting in line, nor on anything before it)."""
        return self._with_refold and self._ahead is None


_CURRENT: ContextVar[Place | None] = ContextVar("refold_place", default=None)


@contextlib.contextmanager
def watch_place() -> Iterator[Place]:
    """Tasks started inside the block report to the place (they copy the context when created)."""
    place = Place()
    token = _CURRENT.set(place)
    try:
        yield place
    finally:
        _CURRENT.reset(token)


def current_place() -> Place | None:
    return _CURRENT.get()
