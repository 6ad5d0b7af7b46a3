"""Alert routes: which Slack channel gets which Refold webhook events. One route per channel.

A route's ID is the last segment of its webhook URL, so it is random and long: for a workspace
connected with a session token (no API key to check signatures with) it is what keeps the URL private.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from enum import StrEnum

import redis.asyncio as aioredis
from pydantic import BaseModel, ValidationError

from bot.store import keys
from bot.store.durable import DurableWrites
from bot.store.redis import decoded, redis_errors

ROUTE_ID_BYTES = 16


class AlertEvents(StrEnum):
    ERRORED = "errored"
    COMPLETED = "completed"
    ALL = "all"


class AlertRoute(BaseModel):
    route_id: str
    team_id: str | None = None
    enterprise_id: str | None = None
    channel_id: str
    events: AlertEvents = AlertEvents.ERRORED
    environment: str | None = None  # production | test; None: every environment
    workflow: str | None = None  # a workflow's name or ID; None: every workflow
    created_by: str | None = None
    created_at: datetime
    refold_webhook_id: str | None = None  # the subscription registered in Refold, if the bot made it


def new_route_id() -> str:
    return secrets.token_hex(ROUTE_ID_BYTES)


def looks_like_route_id(value: str) -> bool:
    return len(value) == 2 * ROUTE_ID_BYTES and all(ch in "0123456789abcdef" for ch in value)


class AlertRouteStore:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis
        self._durable = DurableWrites(redis)

    async def get(self, route_id: str) -> AlertRoute | None:
        if not looks_like_route_id(route_id):
            return None
        async with redis_errors():
            raw = await self._redis.get(keys.alert_route(route_id))
        return _parse(raw)

    async def for_channel(self, workspace: str, channel_id: str) -> AlertRoute | None:
        async with redis_errors():
            route_id = await self._redis.hget(keys.alert_routes_of(workspace), channel_id)
        return await self.get(decoded(route_id)) if route_id else None

    async def save(self, workspace: str, route: AlertRoute) -> None:
        key, index = keys.alert_route(route.route_id), keys.alert_routes_of(workspace)
        await self._durable.apply(
            [key, index],
            ("SET", key, route.model_dump_json()),
            ("HSET", index, route.channel_id, route.route_id),
        )

    async def delete(self, workspace: str, route: AlertRoute) -> None:
        async with redis_errors(), self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(keys.alert_route(route.route_id))
            pipe.hdel(keys.alert_routes_of(workspace), route.channel_id)
            await pipe.execute()

    async def of_workspace(self, workspace: str) -> list[AlertRoute]:
        """Oldest first; entries whose route is gone are pruned."""
        async with redis_errors():
            index = await self._redis.hgetall(keys.alert_routes_of(workspace))
            ids = [decoded(v) for v in index.values()]
            raws = await self._redis.mget([keys.alert_route(i) for i in ids]) if ids else []
        routes = []
        for (channel, _), raw in zip(index.items(), raws, strict=True):
            route = _parse(raw)
            if route is None:
                async with redis_errors():
                    await self._redis.hdel(keys.alert_routes_of(workspace), channel)
                continue
            routes.append(route)
        return sorted(routes, key=lambda r: r.created_at)

    async def forget(self, workspace: str) -> list[AlertRoute]:
        """Delete every route of a workspace (it uninstalled); returns what was deleted."""
        routes = await self.of_workspace(workspace)
        for route in routes:
            await self.delete(workspace, route)
        async with redis_errors():
            await self._redis.delete(keys.alert_routes_of(workspace))
        return routes


def _parse(raw: bytes | str | None) -> AlertRoute | None:
    if raw is None:
        return None
    try:
        return AlertRoute.model_validate_json(raw)
    except ValidationError:
        return None
