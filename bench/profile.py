"""Where the bot's CPU goes under load: py-spy samples the web process and the worker while the load
generator sends slash commands (concurrency 10, each naming a new execution, 200 workspaces).

    pip install py-spy && python bench/profile.py [--requests 1500] [--alone] [--closed]

Prints, per process, the share of samples by the package that was running (the innermost frame's
file: a site-packages distribution, the bot's own modules, or the standard library), so a change can
be judged by where the time moved. Keep the summaries in bench/profiles.md.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import WORKSPACES, command_body, fire, start_world  # noqa: E402
from tests.fakes.refold import errored_doc  # noqa: E402
from tests.harness import BotServer, wait_for_live_worker  # noqa: E402

FRAME = re.compile(r"\((?P<file>[^:()]+)(?::\d+)?\)$")


def package_of(frame: str) -> str:
    match = FRAME.search(frame)
    path = match.group("file") if match else frame
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    if "/bot/" in path:
        return "bot." + path.split("/bot/", 1)[1].split("/", 1)[0].removesuffix(".py")
    if "/lib/python3" in path:
        module = path.split("/lib/python3", 1)[1].split("/", 1)[1]
        return "stdlib " + module.split("/", 1)[0].removesuffix(".py")
    # py-spy may print paths relative to their sys.path entry: the first part names the package.
    return path.split("/", 1)[0].removesuffix(".py")


def idle(leaf: str) -> bool:
    """Waiting in epoll for the next event: no CPU spent."""
    return leaf.startswith("select (") and "selectors.py" in leaf


def summarize(raw: Path, top: int = 16) -> list[tuple[str, float]]:
    """Self time by package, from py-spy's collapsed stacks ("frame;frame;frame count")."""
    shares: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        leaf = stack.split(";")[-1]
        if idle(leaf):
            continue
        shares[package_of(leaf)] += int(count)
        total += int(count)
    return [(name, n / total) for name, n in shares.most_common(top)] if total else []


def inclusive(raw: Path, top: int = 20) -> list[tuple[str, float]]:
    """The bot's own functions by the share of samples they were on the stack for (their callees
    included), epoll waits left out: where a card's time goes, step by step."""
    shares: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if not stack or idle(frames[-1]):
            continue
        total += int(count)
        seen = set()
        for frame in frames:
            match = FRAME.search(frame)
            path = match.group("file") if match else ""
            if path.startswith("bot/") or "/bot/" in path:
                name = f"{frame.split(' (', 1)[0]} ({path.rsplit('bot/', 1)[-1]})"
                if name not in seen:
                    seen.add(name)
                    shares[name] += int(count)
    # The entry point and the server loop are on every stack: they say nothing.
    ranked = [(name, n / total) for name, n in shares.most_common() if n < total] if total else []
    return ranked[:top]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=1500)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--alone", action="store_true", help="no worker: the web process makes the cards")
    parser.add_argument(
        "--closed",
        action="store_true",
        help="10 users in a closed loop (the next command when its card came)",
    )
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="profile-"))
    redis, refold, slack, env = start_world(workdir, args.latency)
    ids = [f"{i:024x}" for i in range(1, args.requests + 21)]
    for eid in ids:
        refold.add_execution(eid, errored_doc())
    bot = BotServer(env, workdir / "bot.log").start()
    worker, worker_log = bot.start_worker(workdir / "worker.log")
    assert bot.process is not None
    try:
        wait_for_live_worker(redis.url)
        if args.alone:
            worker.send_signal(signal.SIGTERM)
            worker.wait(20)
            time.sleep(1.5)  # the web process sees no worker and makes the cards itself
        warm = [command_body(ids[i], f"T{i}", slack.response_url(f"warm-{i}")) for i in range(20)]
        asyncio.run(fire(f"{bot.url}/slack/events", warm, 5))
        time.sleep(1)
        spies = {
            name: subprocess.Popen(
                [
                    "py-spy",
                    "record",
                    "--pid",
                    str(pid),
                    "--format",
                    "raw",
                    "--rate",
                    "250",
                    "-o",
                    str(workdir / f"{name}.txt"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for name, pid in (("web", bot.process.pid), ("worker", worker.pid))
            if not (args.alone and name == "worker")
        }
        time.sleep(1)
        bodies = [
            command_body(ids[20 + i], f"T{i % WORKSPACES}", slack.response_url(f"p-{i}"))
            for i in range(args.requests)
        ]
        after_each = None
        if args.closed:

            async def after_each(i: int) -> None:
                while not slack.responses_to(f"p-{i}"):  # noqa: ASYNC110 - the fake lives in another thread
                    await asyncio.sleep(0.002)

        asyncio.run(fire(f"{bot.url}/slack/events", bodies, 10, after_each))
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not all(
            slack.responses_to(f"p-{i}") for i in range(args.requests)
        ):
            time.sleep(0.1)
        for spy in spies.values():
            spy.send_signal(signal.SIGINT)
            spy.wait(30)
    finally:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            worker.wait(20)
        worker_log.close()
        bot.stop()
        refold.stop()
        slack.stop()
        redis.stop()
    for name in ("web",) if args.alone else ("web", "worker"):
        print(f"\n{name}: self time by package (epoll waits left out)")
        for package, share in summarize(workdir / f"{name}.txt"):
            print(f"  {share:6.1%}  {package}")
        print(f"\n{name}: the bot's functions, callees included")
        for function, share in inclusive(workdir / f"{name}.txt"):
            print(f"  {share:6.1%}  {function}")


if __name__ == "__main__":
    main()
