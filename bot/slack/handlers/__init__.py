"""What a job runs: one handler per job kind (`by_kind`), the context they work with, and the runner."""
