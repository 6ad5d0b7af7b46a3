"""Cost of authorizing one request in OAuth mode: Bolt's default against ours (auth.test cached).

    python bench/authorize.py [--requests 500] [--slack-latency 0.05]

Uses a real redis-server and the loopback Slack fake; `--slack-latency` stands in for the round trip
to slack.com that every uncached auth.test pays.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis.asyncio as aioredis  # noqa: E402
from aiohttp import web  # noqa: E402
from cryptography.fernet import Fernet  # noqa: E402
from slack_bolt.authorization.async_authorize import AsyncInstallationStoreAuthorize  # noqa: E402
from slack_bolt.context.async_context import AsyncBoltContext  # noqa: E402
from slack_sdk.oauth.installation_store.models.installation import Installation  # noqa: E402
from slack_sdk.web.async_client import AsyncWebClient  # noqa: E402

from bot.slack.authorize import RotationSafeAuthorize  # noqa: E402
from bot.store.crypto import Cipher  # noqa: E402
from bot.store.installations import RedisInstallationStore  # noqa: E402
from tests.fakes.slack import FakeSlack  # noqa: E402
from tests.redis_process import RedisProcess  # noqa: E402


class SlowSlack(FakeSlack):
    latency = 0.0

    def build_app(self) -> web.Application:
        app = super().build_app()

        @web.middleware
        async def delay(request: web.Request, handler):
            await asyncio.sleep(self.latency)
            return await handler(request)

        app.middlewares.append(delay)
        return app


async def measure(authorize, client: AsyncWebClient, requests: int) -> list[float]:
    samples = []
    for _ in range(requests):
        context = AsyncBoltContext(client=client)
        started = time.perf_counter()
        result = await authorize(context=context, enterprise_id=None, team_id="T1", user_id="U1")
        samples.append((time.perf_counter() - started) * 1000)
        assert result is not None and result.bot_token == "xoxb-bench"
    return samples


async def run(
    requests: int, latency: float, redis_url: str, slack: SlowSlack
) -> list[tuple[str, float, float, int]]:
    redis = aioredis.from_url(redis_url)
    store = RedisInstallationStore(redis, Cipher([Fernet.generate_key().decode()]))
    await store.async_save(
        Installation(
            app_id="A1",
            team_id="T1",
            user_id="U1",
            bot_token="xoxb-bench",
            bot_id="B1",
            bot_user_id="UB",
            bot_scopes="commands",
        )
    )
    client = AsyncWebClient(base_url=f"{slack.url}/api/")
    slack.latency = latency
    rows = []
    default = AsyncInstallationStoreAuthorize(
        logger=__import__("logging").getLogger("bench"), installation_store=store, client=client
    )
    ours = RotationSafeAuthorize(redis=redis, store=store, client_id="1.2", client_secret="s", client=client)
    for label, authorize in (
        ("Bolt default (auth.test every request)", default),
        ("this bot (auth.test cached per token)", ours),
    ):
        before = len(slack.calls_to("auth.test"))
        samples = await measure(authorize, client, requests)
        rows.append(
            (
                label,
                statistics.median(samples),
                sorted(samples)[int(len(samples) * 0.99) - 1],
                len(slack.calls_to("auth.test")) - before,
            )
        )
    await redis.aclose()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--slack-latency", type=float, default=0.05)
    args = parser.parse_args()
    redis = RedisProcess(Path(tempfile.mkdtemp(prefix="bench-auth-"))).start()
    slack = SlowSlack().start()
    try:
        for latency in (0.0, args.slack_latency):
            rows = asyncio.run(run(args.requests, latency, redis.url, slack))
            print(f"\nSlack latency {latency * 1000:.0f} ms, {args.requests} requests")
            print("| authorize | p50 ms | p99 ms | auth.test calls |\n|---|---|---|---|")
            for label, p50, p99, calls in rows:
                print(f"| {label} | {p50:.2f} | {p99:.2f} | {calls} |")
    finally:
        slack.stop()
        redis.stop()


if __name__ == "__main__":
    main()
