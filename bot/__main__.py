"""CLI entry: serve | worker | init | keygen | check | connect | disconnect | lookup | rotate-keys | queue |
audit | alerts."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import difflib
import logging
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from cryptography.fernet import Fernet

from bot.logs import configure_logging
from bot.settings import Settings, SettingsError, inspect_settings, load_settings_for
from bot.store.embedded import EmbeddedRedisUnavailable, redis_for

log = logging.getLogger("bot.store.embedded")

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

EPILOG = """exit codes:
  0    done
  1    a check failed, or Refold, Slack or Redis refused or did not answer
  2    usage or configuration error (the message names the option or variable)
  130  interrupted (Ctrl-C)

Run `python -m bot init` to write a .env interactively. Docs: README.md."""


def _version() -> str:
    try:
        return version("refold-execution-bot")
    except PackageNotFoundError:
        return "unknown"


def _parser() -> tuple[argparse.ArgumentParser, list[str]]:
    """The parser, and the commands it knows (for "did you mean")."""
    parser = argparse.ArgumentParser(
        prog="python -m bot",
        description="Refold execution bot for Slack",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    verbs = parser.add_subparsers(dest="verb", metavar="<command>")
    verbs.add_parser("serve", help="run the Slack app (HTTP, or Socket Mode with SLACK_APP_TOKEN)")
    verbs.add_parser("worker", help="run queued jobs for the web processes (Procfile `worker:`)")
    verbs.add_parser("init", help="write .env interactively, checking each token as you go")
    verbs.add_parser("keygen", help="print a new CREDENTIALS_KEY")
    verbs.add_parser("check", help="verify settings, Redis, Slack and Refold")
    verbs.add_parser("rotate-keys", help="re-encrypt every stored record under the newest CREDENTIALS_KEY")
    verbs.add_parser("queue", help="print queued, active, scheduled and failed jobs and the live workers")

    connect = verbs.add_parser("connect", help="store Refold credentials for a workspace (secret on stdin)")
    target = connect.add_mutually_exclusive_group(required=True)
    target.add_argument("--team", help="Slack team ID (T…)")
    target.add_argument("--enterprise", help="Enterprise Grid org ID (E…), for an org-wide install")
    connect.add_argument("--linked-account", help="default linked account ID")
    connect.add_argument("--base-url", help="Refold base URL (must be on REFOLD_ALLOWED_HOSTS)")
    connect.add_argument(
        "--session-token", action="store_true", help="the secret on stdin is a session token, not an API key"
    )

    disconnect = verbs.add_parser("disconnect", help="remove a workspace's Refold credentials")
    dtarget = disconnect.add_mutually_exclusive_group(required=True)
    dtarget.add_argument("--team")
    dtarget.add_argument("--enterprise")

    lookup = verbs.add_parser("lookup", help="print an execution")
    lookup.add_argument("execution_id")
    lookup.add_argument("--team", help="use this workspace's stored credentials")
    lookup.add_argument("--enterprise", help="the workspace's Enterprise Grid org, if any")
    lookup.add_argument("--linked-account", help="override the default linked account")
    shown = lookup.add_mutually_exclusive_group()
    shown.add_argument("--json", action="store_true", help="print the Block Kit card Slack would get")
    shown.add_argument(
        "--preview", action="store_true", help="print a Block Kit Builder link showing the card"
    )
    audit = verbs.add_parser("audit", help="print a workspace's audit log (reruns, stops, connects)")
    atarget = audit.add_mutually_exclusive_group(required=True)
    atarget.add_argument("--team", help="Slack team ID (T…)")
    atarget.add_argument("--enterprise", help="Enterprise Grid org ID (E…), for an org-wide connection")
    audit.add_argument("--limit", type=int, default=50, help="how many entries, newest first (default 50)")
    alerts = verbs.add_parser(
        "alerts", help="list a workspace's alert routes (channels that get Refold alerts)"
    )
    ltarget = alerts.add_mutually_exclusive_group(required=True)
    ltarget.add_argument("--team", help="Slack team ID (T…)")
    ltarget.add_argument("--enterprise", help="Enterprise Grid org ID (E…), for an org-wide install")
    return parser, sorted(verbs.choices)


def _unknown_verb(choices: list[str], argv: list[str]) -> str | None:
    """A did-you-mean line for a mistyped command, or None."""
    if not argv or argv[0].startswith("-"):
        return None
    if argv[0] in choices:
        return None
    close = difflib.get_close_matches(argv[0], choices, n=1, cutoff=0.6)
    hint = f" Did you mean `python -m bot {close[0]}`?" if close else ""
    return f"python -m bot: unknown command '{argv[0]}'.{hint} Commands: {', '.join(choices)}."


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser, verbs = _parser()
    unknown = _unknown_verb(verbs, args_list)
    if unknown:
        print(unknown, file=sys.stderr)
        return EXIT_USAGE
    args = parser.parse_args(args_list)
    verb = args.verb or "serve"
    if verb == "keygen":
        print(Fernet.generate_key().decode())
        return 0
    try:
        if verb == "init":
            from bot.init import run_init

            return run_init()
        if verb == "check":
            from bot.cli_commands import check_command

            return check_command(args)
        if verb == "serve" and _first_run():
            from bot.init import run_init

            code = run_init(starting=True)
            if code != 0 or not Path(".env").exists():
                return code
        purpose = {"serve": "serve", "lookup": "values"}.get(verb, "store")
        settings = load_settings_for(purpose)
        # A one-shot command speaks for itself, one line per outcome; library chatter (retries,
        # request lines) would only bury it. Servers log at LOG_LEVEL.
        level = (
            settings.log_level if verb in {"serve", "worker"} or settings.log_level == "DEBUG" else "ERROR"
        )
        configure_logging(level, settings.log_format, _secrets(settings))
        # An embedded Redis is found or started here, before any event loop and in the main thread
        # (bot.store.embedded says why); a lookup with the fallback credentials needs no Redis.
        needs_redis = verb != "lookup" or bool(args.team or args.enterprise)
        attached = redis_for(settings, log.warning) if needs_redis else contextlib.nullcontext(settings)
        with attached as settings:
            if verb == "serve":
                from bot.server import serve

                return serve(settings)
            if verb == "worker":
                from bot.worker import run_worker

                return asyncio.run(run_worker(settings))
            return asyncio.run(_run(verb, args, settings))
    except EmbeddedRedisUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except SettingsError as exc:
        for line in exc.lines:
            print(f"configuration error: {line}", file=sys.stderr)
        if len(exc.lines) > 1:
            print(f"{len(exc.lines)} settings to fix (in .env or the environment).", file=sys.stderr)
        if verb == "serve":
            print("`python -m bot init` writes .env for you, checking each token.", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def _first_run() -> bool:
    """A person at a terminal, no .env here and the settings incomplete: set-up comes first."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()) or Path(".env").exists():
        return False
    _, problems = inspect_settings("serve")
    return bool(problems)


def _secrets(settings: Settings) -> list[str | None]:
    values = [
        settings.slack_signing_secret,
        settings.slack_bot_token,
        settings.slack_client_secret,
        settings.slack_app_token,
        settings.refold_api_key,
        settings.credentials_key,
        settings.metrics_token,
    ]
    out = [v.get_secret_value() if v else None for v in values]
    out.extend(settings.credential_keys)
    return out


async def _run(verb: str, args: argparse.Namespace, settings: Settings) -> int:
    from bot import cli_commands

    handlers = {
        "connect": cli_commands.connect,
        "disconnect": cli_commands.disconnect,
        "lookup": cli_commands.lookup,
        "rotate-keys": cli_commands.rotate_keys,
        "queue": cli_commands.queue,
        "audit": cli_commands.audit,
        "alerts": cli_commands.alerts,
    }
    return await handlers[verb](args, settings)


if __name__ == "__main__":
    sys.exit(main())
