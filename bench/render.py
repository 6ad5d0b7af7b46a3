"""Time to build the card: 10, 100, 1,000 and 5,000 nodes, and a 1 MB output. Median of repeated runs."""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime

from bot.refold.models import Execution
from bot.render.blocks import render_execution


def document(nodes: int, output_bytes: int = 200) -> Execution:
    return Execution.model_validate(
        {
            "_id": "65410cf6cdf931a12d7ab009",
            "name": "Bench",
            "status": "ERRORED",
            "completion_percentage": 50,
            "nodes": [
                {
                    "node_id": str(i),
                    "node_name": f"Node {i}",
                    "node_type": "action",
                    "node_status": "Errored" if i % 97 == 0 else "Success",
                    "attempts_made": 1,
                    "execution_time": i,
                    "latest_output": {"blob": "x" * output_bytes},
                }
                for i in range(nodes)
            ],
        }
    )


def time_render(execution: Execution, repeats: int) -> tuple[float, float]:
    now = datetime.now(UTC)
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        render_execution(execution, now=now, linked_account_id="acme", shareable=True)
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


def run() -> list[tuple[str, float, float]]:
    cases = [(f"{n:,} nodes", document(n)) for n in (10, 100, 1_000, 5_000)]
    cases.append(("1 MB output (1 failing node)", document(1, 1_000_000)))
    return [(label, *time_render(execution, 50)) for label, execution in cases]


if __name__ == "__main__":
    for label, p50, p95 in run():
        print(f"{label:32} p50 {p50:7.2f} ms   p95 {p95:7.2f} ms")
