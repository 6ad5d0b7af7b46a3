"""The CLI as an operator runs it: a real subprocess against the loopback Refold and a real Redis."""

from __future__ import annotations

import json

from tests.conftest import run_cli
from tests.fakes.refold import FakeRefold, errored_doc, running_doc

EXEC_ID = "65410cf6cdf931a12d7ab009"


def test_keygen_prints_a_fernet_key() -> None:
    from cryptography.fernet import Fernet

    result = run_cli("keygen", env={})
    assert result.returncode == 0
    Fernet(result.stdout.strip().encode())


def test_lookup_with_fallback_env_credentials_prints_summary(refold: FakeRefold) -> None:
    refold.api_keys.add("tk_env_key")
    refold.add_execution(EXEC_ID, errored_doc(), linked_account_id="acme")
    env = {"REFOLD_API_URL": refold.url, "REFOLD_API_KEY": "tk_env_key", "REFOLD_LINKED_ACCOUNT_ID": "acme"}
    result = run_cli("lookup", EXEC_ID, env=env)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Export contact to HubSpot  [ERRORED]" in out
    assert "progress: ▰▰▰▰▰▰▰▱▱▱ 66%" in out
    assert "✗ Create contact  (hubspot)  Errored  attempts 3  2.1 s" in out
    assert "HubSpot token expired" in out
    assert "tk_env_key" not in out + result.stderr


def test_lookup_json_prints_the_card(refold: FakeRefold) -> None:
    refold.api_keys.add("tk_env_key")
    refold.add_execution(EXEC_ID, running_doc(), linked_account_id="acme")
    env = {"REFOLD_API_URL": refold.url, "REFOLD_API_KEY": "tk_env_key", "REFOLD_LINKED_ACCOUNT_ID": "acme"}
    result = run_cli("lookup", EXEC_ID, "--json", env=env)
    assert result.returncode == 0, result.stderr
    card = json.loads(result.stdout)
    assert card["blocks"][0]["type"] == "header"
    actions = next(b for b in card["blocks"] if b["type"] == "actions")
    assert [e["action_id"] for e in actions["elements"]] == [
        "refresh_execution",
        "follow_execution",
        "stop_execution",
        "share_execution",
    ]


def test_lookup_errors_are_friendly(refold: FakeRefold) -> None:
    env = {"REFOLD_API_URL": refold.url, "REFOLD_API_KEY": "tk_wrong", "REFOLD_LINKED_ACCOUNT_ID": "acme"}
    result = run_cli("lookup", EXEC_ID, env=env)
    assert result.returncode == 1
    assert "did not accept" in result.stderr and "Traceback" not in result.stderr
    assert "tk_wrong" not in result.stderr
    bad = run_cli("lookup", "../../etc/passwd", env=env)
    assert bad.returncode == 1 and "is not an execution ID" in bad.stderr
    assert refold.count("get") == 1


def test_serve_lists_every_missing_setting_at_once() -> None:
    result = run_cli("serve", env={})
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert [line.split(":")[1].strip() for line in lines[:-2]] == [
        "CREDENTIALS_KEY",
        "SLACK_BOT_TOKEN",
        "SLACK_SIGNING_SECRET",
    ]
    assert all(line.startswith("configuration error: ") for line in lines[:-2])
    assert lines[-2:] == [
        "3 settings to fix (in .env or the environment).",
        "`python -m bot init` writes .env for you, checking each token.",
    ]


def test_a_mistyped_command_gets_a_did_you_mean() -> None:
    result = run_cli("lokup", EXEC_ID, env={})
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "python -m bot: unknown command 'lokup'. Did you mean `python -m bot lookup`? Commands: alerts, audit, check, "
        "connect, disconnect, init, keygen, lookup, queue, rotate-keys, serve, worker."
    )


def test_version_and_the_exit_codes_in_help() -> None:
    version = run_cli("--version", env={})
    assert version.returncode == 0 and version.stdout.strip() == "python -m bot 0.2.0"
    helped = run_cli("--help", env={})
    assert helped.returncode == 0
    assert "exit codes:" in helped.stdout and "130  interrupted" in helped.stdout


def test_an_invalid_id_in_the_terminal_speaks_terminal(refold: FakeRefold) -> None:
    env = {"REFOLD_API_URL": refold.url, "REFOLD_API_KEY": "tk_x_123456", "REFOLD_LINKED_ACCOUNT_ID": "acme"}
    result = run_cli("lookup", "not-an-id", env=env)
    assert result.returncode == 1
    assert result.stderr == (
        "error: 'not-an-id' is not an execution ID. Execution IDs are 24 hex characters, like "
        "65410cf6cdf931a12d7ab009.\n"
    )
    assert sum(refold.calls.values()) == 0


def test_connect_prints_one_line_for_one_failure(redis_url: str, credentials_key: str) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    env = {"REFOLD_API_URL": dead, "REDIS_URL": redis_url, "CREDENTIALS_KEY": credentials_key}
    result = run_cli("connect", "--team", "T1", "--linked-account", "acme", env=env, stdin="tk_test_key")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "error: nothing was saved. Refold could not be reached just now. Try again in a minute."
    ]


def test_check_names_the_redis_url_and_the_cause_but_never_the_password(credentials_key: str) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        "CREDENTIALS_KEY": credentials_key,
        "REDIS_URL": f"redis://ops:sekrit-pass@127.0.0.1:{port}/2",
        "SLACK_BOT_TOKEN": "",
    }
    result = run_cli("check", env=env)
    assert result.returncode == 1
    assert (
        f"FAIL redis: redis://ops:***@127.0.0.1:{port}/2: connection refused: is redis-server running there?"
        in result.stdout
    )
    assert "sekrit-pass" not in result.stdout + result.stderr
    # Every settings problem is listed, one line each, before the probes.
    assert "FAIL settings: SLACK_BOT_TOKEN: is not set" in result.stdout
    assert "FAIL settings: SLACK_SIGNING_SECRET: is required in HTTP mode" in result.stdout


def test_connect_then_lookup_by_team(refold: FakeRefold, redis_url: str, credentials_key: str) -> None:
    refold.api_keys.add("tk_test_key")
    refold.add_execution(EXEC_ID, errored_doc(), linked_account_id="acme")
    env = {"REFOLD_API_URL": refold.url, "REDIS_URL": redis_url, "CREDENTIALS_KEY": credentials_key}
    connected = run_cli("connect", "--team", "T1", "--linked-account", "acme", env=env, stdin="tk_test_key")
    assert connected.returncode == 0, connected.stderr
    assert "tk_test_key" not in connected.stdout + connected.stderr
    assert refold.count("list") == 1  # validated before saving
    looked_up = run_cli("lookup", EXEC_ID, "--team", "T1", env=env)
    assert looked_up.returncode == 0, looked_up.stderr
    assert "Export contact to HubSpot" in looked_up.stdout
    assert refold.requests[-1]["headers"]["x-api-key"] == "tk_test_key"
    gone = run_cli("disconnect", "--team", "T1", env=env)
    assert gone.returncode == 0 and "disconnected team T1" in gone.stdout
    after = run_cli("lookup", EXEC_ID, "--team", "T1", env=env)
    assert after.returncode == 1 and "not connected" in after.stderr


def test_connect_refuses_a_rejected_key(refold: FakeRefold, redis_url: str, credentials_key: str) -> None:
    env = {"REFOLD_API_URL": refold.url, "REDIS_URL": redis_url, "CREDENTIALS_KEY": credentials_key}
    result = run_cli("connect", "--team", "T1", "--linked-account", "acme", env=env, stdin="tk_bad")
    assert result.returncode == 1
    assert "nothing was saved" in result.stderr
    import redis

    client = redis.Redis.from_url(redis_url)
    assert client.keys("refold-bot:creds:*") == []


def test_connect_refuses_a_foreign_base_url(refold: FakeRefold, redis_url: str, credentials_key: str) -> None:
    env = {"REFOLD_API_URL": refold.url, "REDIS_URL": redis_url, "CREDENTIALS_KEY": credentials_key}
    result = run_cli(
        "connect",
        "--team",
        "T1",
        "--linked-account",
        "acme",
        "--base-url",
        "https://evil.example",
        env=env,
        stdin="tk_test_key",
    )
    assert result.returncode == 2 and "not an allowed Refold host" in result.stderr
    assert sum(refold.calls.values()) == 0


def test_lookup_json_links_the_dashboard_when_set(refold: FakeRefold) -> None:
    refold.api_keys.add("tk_env_key")
    refold.add_execution(EXEC_ID, errored_doc(), linked_account_id="acme")
    env = {
        "REFOLD_API_URL": refold.url,
        "REFOLD_API_KEY": "tk_env_key",
        "REFOLD_LINKED_ACCOUNT_ID": "acme",
        "REFOLD_DASHBOARD_URL": "https://dash.example/run/{execution_id}",
    }
    result = run_cli("lookup", EXEC_ID, "--json", env=env)
    assert result.returncode == 0, result.stderr
    actions = next(b for b in json.loads(result.stdout)["blocks"] if b["type"] == "actions")
    assert actions["elements"][-1]["url"] == f"https://dash.example/run/{EXEC_ID}"


def test_lookup_preview_prints_a_block_kit_builder_link_of_the_exact_card(refold: FakeRefold) -> None:
    from urllib.parse import unquote

    refold.api_keys.add("tk_env_key")
    refold.add_execution(EXEC_ID, errored_doc(), linked_account_id="acme")
    env = {"REFOLD_API_URL": refold.url, "REFOLD_API_KEY": "tk_env_key", "REFOLD_LINKED_ACCOUNT_ID": "acme"}
    preview = run_cli("lookup", EXEC_ID, "--preview", env=env)
    card = run_cli("lookup", EXEC_ID, "--json", env=env)
    assert preview.returncode == 0, preview.stderr
    link = preview.stdout.strip()
    assert link.startswith("https://app.slack.com/block-kit-builder#")
    shown = json.loads(unquote(link.split("#", 1)[1]))
    expected = json.loads(card.stdout)["blocks"]

    def without_clock(blocks: list[dict]) -> list[dict]:
        # The "updated" time moves between the two runs; everything else must be the same card.
        for block in blocks:
            if block["type"] == "context":
                block["elements"] = [e for e in block["elements"] if not e["text"].startswith("updated ")]
        return blocks

    assert without_clock(shown["blocks"]) == without_clock(expected)
