"""CLI entry: serve | worker | keygen | check | connect | disconnect | lookup | rotate-keys | queue."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from cryptography.fernet import Fernet

from bot.logs import configure_logging
from bot.settings import Settings, SettingsError, load_settings

EXIT_USAGE = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Refold execution bot for Slack")
    verbs = parser.add_subparsers(dest="verb")
    verbs.add_parser("serve", help="run the Slack app (HTTP, or Socket Mode with SLACK_APP_TOKEN)")
    verbs.add_parser("worker", help="run queued lookups for the web processes (Procfile `worker:`)")
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
    lookup.add_argument("--json", action="store_true", help="print the Block Kit card Slack would get")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    verb = args.verb or "serve"
    if verb == "keygen":
        print(Fernet.generate_key().decode())
        return 0
    try:
        settings = load_settings()
        configure_logging(settings.log_level, settings.log_format, _secrets(settings))
        if verb == "serve":
            settings.require_serve()
            from bot.server import serve

            return serve(settings)
        if verb == "worker":
            settings.require_credentials_key()
            from bot.worker import run_worker

            return asyncio.run(run_worker(settings))
        return asyncio.run(_run(verb, args, settings))
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


def _secrets(settings: Settings) -> list[str | None]:
    values = [
        settings.slack_signing_secret,
        settings.slack_bot_token,
        settings.slack_client_secret,
        settings.slack_app_token,
        settings.refold_api_key,
        settings.credentials_key,
    ]
    out = [v.get_secret_value() if v else None for v in values]
    out.extend(settings.credential_keys)
    return out


async def _run(verb: str, args: argparse.Namespace, settings: Settings) -> int:
    from bot import cli_commands

    handlers = {
        "check": cli_commands.check,
        "connect": cli_commands.connect,
        "disconnect": cli_commands.disconnect,
        "lookup": cli_commands.lookup,
        "rotate-keys": cli_commands.rotate_keys,
        "queue": cli_commands.queue,
    }
    return await handlers[verb](args, settings)


if __name__ == "__main__":
    sys.exit(main())
