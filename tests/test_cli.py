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
    assert [e["action_id"] for e in actions["elements"]] == ["refresh_execution", "share_execution"]


def test_lookup_errors_are_friendly(refold: FakeRefold) -> None:
    env = {"REFOLD_API_URL": refold.url, "REFOLD_API_KEY": "tk_wrong", "REFOLD_LINKED_ACCOUNT_ID": "acme"}
    result = run_cli("lookup", EXEC_ID, env=env)
    assert result.returncode == 1
    assert "did not accept" in result.stderr and "Traceback" not in result.stderr
    assert "tk_wrong" not in result.stderr
    bad = run_cli("lookup", "../../etc/passwd", env=env)
    assert bad.returncode == 1 and "is not an execution ID" in bad.stderr
    assert refold.count("get") == 1


def test_serve_with_missing_settings_prints_one_line() -> None:
    result = run_cli("serve", env={})
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "CREDENTIALS_KEY" in result.stderr and "Traceback" not in result.stderr


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
