"""The operator CLI verbs. Each prints one clear line per outcome and returns an exit code."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import quote

import redis.asyncio as aioredis
from pydantic import SecretStr
from redis.exceptions import RedisError

from bot.container import Container, build_container, fallback_credentials
from bot.errors import BotError, ErrorKind
from bot.redis_urls import BadRedisUrl
from bot.refold.client import RefoldClient, make_http_client
from bot.refold.credentials import AuthKind
from bot.refold.errors import RefoldError
from bot.refold.ids import InvalidExecutionId, normalize_execution_id
from bot.render.alerts import filters_text
from bot.render.blocks import render_execution
from bot.render.errors import Surface, describe
from bot.render.follow import AuditLine, audit_lines
from bot.render.terminal import execution_summary
from bot.settings import Settings, inspect_settings
from bot.store.credentials import Scope
from bot.store.embedded import EmbeddedRedisUnavailable, redis_for
from bot.store.errors import StoreUnavailable
from bot.store.redis import eviction_problem, make_redis, ping_problem, safe_url, server_facts
from bot.usecases.connect import ConnectRequest
from bot.usecases.workspace import Workspace

EXIT_FAILED = 1
EXIT_USAGE = 2


def read_secret_from_stdin() -> SecretStr:
    if sys.stdin.isatty():
        import getpass

        return SecretStr(getpass.getpass("Refold API key or session token: ").strip())
    return SecretStr(sys.stdin.read().strip())


def auth_kind(args: argparse.Namespace) -> AuthKind:
    return AuthKind.SESSION_TOKEN if args.session_token else AuthKind.API_KEY


BLOCK_KIT_BUILDER = "https://app.slack.com/block-kit-builder#"


def block_kit_builder_link(blocks: list[dict[str, object]]) -> str:
    """A link that opens Slack's Block Kit Builder showing exactly these blocks (as a message)."""
    return BLOCK_KIT_BUILDER + quote(json.dumps({"blocks": blocks}, separators=(",", ":")), safe="")


def print_json(data: object) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False, default=str))


MAX_AUDIT_LINES = 1000


def _fail(exc: BaseException) -> int:
    print(f"error: {describe(exc, Surface.TERMINAL)}", file=sys.stderr)
    return EXIT_FAILED


def _container(settings: Settings) -> Container:
    settings.require_credentials_key()
    return build_container(settings)


def _scope(args: argparse.Namespace) -> tuple[Scope, str]:
    return (Scope.ENTERPRISE, args.enterprise) if args.enterprise else (Scope.TEAM, args.team)


async def lookup(args: argparse.Namespace, settings: Settings) -> int:
    try:
        execution_id = normalize_execution_id(args.execution_id)
    except InvalidExecutionId as exc:
        return _fail(exc)
    try:
        if args.team or args.enterprise:
            container = _container(settings)
            try:
                result = await container.lookup.lookup(
                    Workspace(args.team, args.enterprise), execution_id, args.linked_account
                )
            finally:
                await container.aclose()
            execution, account = result.execution, result.linked_account_id
        else:
            creds = fallback_credentials(settings)
            if creds is None:
                print(
                    "error: no credentials: set REFOLD_API_KEY and REFOLD_LINKED_ACCOUNT_ID, "
                    "or pass --team for a connected workspace",
                    file=sys.stderr,
                )
                return EXIT_USAGE
            async with make_http_client(settings.refold_timeout_seconds) as http:
                execution = await RefoldClient(http).get_execution(creds, execution_id, args.linked_account)
            account = creds.effective_linked_account(args.linked_account)
    except BotError as exc:
        return _fail(exc)
    if args.json or args.preview:
        card = render_execution(
            execution,
            now=datetime.now(UTC),
            linked_account_id=account,
            shareable=True,
            dashboard_url=settings.refold_dashboard_url,
        )
        if args.preview:
            print(block_kit_builder_link(card.blocks))
        else:
            print_json({"text": card.text, "blocks": card.blocks})
    else:
        print(execution_summary(execution))
    return 0


async def connect(args: argparse.Namespace, settings: Settings) -> int:
    scope, scope_id = _scope(args)
    secret = read_secret_from_stdin()
    container = _container(settings)
    try:
        request = ConnectRequest(
            scope, scope_id, auth_kind(args), secret, args.linked_account, args.base_url, connected_by="cli"
        )
        record = container.connect.prepare(request)
        await container.connect.verify(record)
        await container.connect.save(request, record)
    except BotError as exc:
        usage = exc.kind in {
            ErrorKind.INVALID_SECRET,
            ErrorKind.INVALID_LINKED_ACCOUNT,
            ErrorKind.DISALLOWED_BASE_URL,
        }
        print(f"error: nothing was saved. {describe(exc, Surface.TERMINAL)}", file=sys.stderr)
        return EXIT_USAGE if usage else EXIT_FAILED
    finally:
        await container.aclose()
    print(f"connected {scope.value} {scope_id} (linked account {record.linked_account_id or '–'})")
    return 0


async def disconnect(args: argparse.Namespace, settings: Settings) -> int:
    scope, scope_id = _scope(args)
    container = _container(settings)
    try:
        removed = await container.connect.disconnect(scope, scope_id)
    except StoreUnavailable as exc:
        return _fail(exc)
    finally:
        await container.aclose()
    print(
        f"disconnected {scope.value} {scope_id}" if removed else f"{scope.value} {scope_id} was not connected"
    )
    return 0


async def rotate_keys(args: argparse.Namespace, settings: Settings) -> int:
    container = _container(settings)
    try:
        rotated, unreadable = await container.credentials.rotate_all()
    except StoreUnavailable as exc:
        return _fail(exc)
    finally:
        await container.aclose()
    print(f"re-encrypted {rotated} records under the newest key; {unreadable} unreadable")
    return EXIT_FAILED if unreadable else 0


def check_command(args: argparse.Namespace) -> int:
    """`check`: the settings, then the Redis this process would use (an embedded one is found, or
    started for the check and stopped after), Slack and Refold."""
    settings, problems = inspect_settings("serve")
    embedded: list[str] = []
    redis_problem: str | None = None
    bad_url = any(variable == "REDIS_URL" for variable, _ in problems)
    try:
        with contextlib.ExitStack() as stack:
            if not bad_url:
                try:
                    settings = stack.enter_context(redis_for(settings, embedded.append))
                except EmbeddedRedisUnavailable as exc:
                    redis_problem = str(exc)
            return asyncio.run(check(settings, problems, embedded, redis_problem))
    except BadRedisUrl as exc:  # inspect_settings reports it; this is the belt to its braces
        print(f"FAIL settings: REDIS_URL: {exc}")
        return EXIT_FAILED


async def check(
    settings: Settings,
    problems: list[tuple[str, str]],
    embedded: list[str] | None = None,
    redis_problem: str | None = None,
) -> int:
    """One line per check; every settings problem is listed, then Redis, Slack and Refold are tried.
    A REDIS_URL that cannot be read is its settings line alone: there is nothing to probe."""
    ok = True

    def line(name: str, passed: bool, detail: str) -> None:
        nonlocal ok
        ok = ok and passed
        print(f"{'ok  ' if passed else 'FAIL'} {name}: {detail}")

    for variable, problem in problems:
        line("settings", False, f"{variable}: {problem}")
    if not problems:
        line("settings", True, "complete")
    probe_redis = not any(variable == "REDIS_URL" for variable, _ in problems)
    for text in embedded or []:
        line("redis", True, text)
    if redis_problem is not None:
        line("redis", False, redis_problem)
        probe_redis = False
    http = make_http_client(settings.refold_timeout_seconds)
    try:
        if probe_redis:
            await _check_redis(settings, line)
        line(*await _check_slack(settings))
        creds = fallback_credentials(settings)
        if creds is None:
            line("refold", True, "no fallback credentials set; workspaces connect their own")
        else:
            try:
                await RefoldClient(http).list_executions(creds, limit=1)
                line("refold", True, f"fallback credentials accepted by {settings.refold_api_url}")
            except RefoldError as exc:
                line("refold", False, describe(exc, Surface.TERMINAL))
    finally:
        await http.aclose()
    return 0 if ok else EXIT_FAILED


async def _check_redis(settings: Settings, line: Callable[[str, bool, str], None]) -> None:
    # The probes need no stored secrets, so they run even when CREDENTIALS_KEY is missing.
    redis = make_redis(settings)
    try:
        where = safe_url(settings.redis_url.get_secret_value())
        cause = await ping_problem(redis)
        line("redis", cause is None, f"answers PING at {where}" if cause is None else f"{where}: {cause}")
        if cause is None:
            for mark, detail in await _redis_durability(redis):
                if mark == "FAIL":
                    line("redis", False, detail)
                else:
                    print(f"{mark} redis: {detail}")
    finally:
        await redis.aclose()


async def _redis_durability(redis: aioredis.Redis) -> list[tuple[str, str]]:
    """Role, replicas, persistence and eviction: `ok` lines; a `WARN` (not a failure) when nothing
    would survive a restart; a `FAIL` when Redis may delete keys to make room."""
    try:
        facts = await server_facts(redis)
    except RedisError as exc:
        return [("WARN", f"could not read the server's role ({type(exc).__name__})")]
    role = "primary" if facts.role == "master" else facts.role
    lines = [("ok  ", f"role {role}, {facts.replicas} replica{'' if facts.replicas == 1 else 's'} connected")]
    if facts.persistence is None:
        lines.append(("ok  ", "persistence: could not tell (CONFIG is disabled, as on managed Redis)"))
        lines.append(
            (
                "ok  ",
                "eviction: cannot tell (CONFIG is disabled, as on managed Redis); make sure its "
                "maxmemory-policy is noeviction",
            )
        )
        return lines
    if facts.persistence == "off":
        lines.append(
            (
                "WARN",
                "persistence is off (no AOF, no RDB): a restart loses connected workspaces, alert "
                "routes and follows; see docs/operations.md",
            )
        )
    else:
        lines.append(("ok  ", f"persistence: {facts.persistence}"))
    if facts.eviction is not None and facts.eviction != "noeviction":
        lines.append(("FAIL", eviction_problem(facts.eviction)))
    else:
        lines.append(("ok  ", "eviction: noeviction (keys are never deleted to make room)"))
    return lines


async def _check_slack(settings: Settings) -> tuple[str, bool, str]:
    if settings.slack_bot_token is None:
        return "slack", True, "OAuth mode: tokens come from installations"
    from slack_sdk.errors import SlackApiError

    from bot.slack.clients import new_client

    client = new_client(settings, settings.slack_bot_token.get_secret_value())
    try:
        auth = await client.auth_test()
        return "slack", True, f"auth.test ok as {auth.get('user')} in {auth.get('team')}"
    except SlackApiError as exc:
        return "slack", False, f"auth.test failed: {exc.response.get('error')}"
    except Exception as exc:  # network failures of any kind
        return "slack", False, f"could not reach Slack at {settings.slack_api_url} ({type(exc).__name__})"


async def queue(args: argparse.Namespace, settings: Settings) -> int:
    container = _container(settings)
    try:
        stats = await container.jobs.stats()
    except StoreUnavailable as exc:
        return _fail(exc)
    finally:
        await container.aclose(0)
    print(f"queued: {stats.queued}")
    print(f"active: {stats.active}")
    print(f"scheduled: {stats.scheduled}")
    print(f"failed: {stats.failed}")
    print(f"workers: {len(stats.workers)}" + (f" ({', '.join(stats.workers)})" if stats.workers else ""))
    # Web processes take queued and scheduled jobs themselves while no worker process is alive.
    print(f"web standby workers: {len(stats.standby)}")
    return 0


async def audit(args: argparse.Namespace, settings: Settings) -> int:
    _, scope_id = _scope(args)
    limit = max(1, min(int(args.limit), MAX_AUDIT_LINES))
    container = _container(settings)
    try:
        entries = await container.actions.latest(Workspace(scope_id), limit)
    except StoreUnavailable as exc:
        return _fail(exc)
    finally:
        await container.aclose(0)
    if not entries:
        print(f"no audit entries for {scope_id}")
        return 0
    for line in audit_lines([AuditLine(**vars(e)) for e in entries], slack=False):
        print(line)
    return 0


async def alerts(args: argparse.Namespace, settings: Settings) -> int:
    workspace = Workspace(args.team, args.enterprise)
    container = _container(settings)
    try:
        routes = await container.alerts.of_workspace(workspace)
    except StoreUnavailable as exc:
        return _fail(exc)
    finally:
        await container.aclose(0)
    if not routes:
        print(f"no alert routes for {workspace.label}")
        return 0
    for route in routes:
        where = (
            container.alerts.webhook_url(route.route_id) or f"<PUBLIC_URL>/refold/webhooks/{route.route_id}"
        )
        subscribed = (
            f"subscribed in Refold ({route.refold_webhook_id})"
            if route.refold_webhook_id
            else "added by hand"
        )
        print(
            f"{route.channel_id}  {filters_text(route.events.value, route.environment, route.workflow)}"
            f"  {subscribed}  by {route.created_by or '-'}  {where}"
        )
    return 0
