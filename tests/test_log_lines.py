"""Library lines about jobs stay one line: no traceback from an earlier attempt rides along."""

from __future__ import annotations

import logging

from saq.job import Job

from bot.logs import OneLine


def _record(job: Job, exc: BaseException) -> logging.LogRecord:
    return logging.LogRecord(
        "saq", logging.ERROR, __file__, 1, "Error processing job %s", (job,), (type(exc), exc, None)
    )


def test_a_retried_jobs_failure_is_one_line_naming_the_job_and_the_exception() -> None:
    job = Job("run", key="lookup:abc", attempts=2, error="Traceback (most recent call last):\n  File x")
    record = _record(job, RuntimeError("boom"))
    assert OneLine().filter(record)
    line = record.getMessage()
    assert line == "Error processing job Job<lookup:abc, attempt 2>: RuntimeError"
    assert record.exc_info is None


def test_lines_without_a_job_keep_their_arguments() -> None:
    record = logging.LogRecord(
        "saq", logging.INFO, __file__, 1, "worker %s started, %s jobs", ("w1", 3), None
    )
    assert OneLine().filter(record)
    assert record.getMessage() == "worker w1 started, 3 jobs"
