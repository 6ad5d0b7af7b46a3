"""The Refold client against the loopback fake: both auth forms, every error class, retries."""

from __future__ import annotations

import contextlib
import json
import time
from importlib.metadata import version

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from bot.refold.client import RefoldClient, RetryPolicy, make_http_client
from bot.refold.credentials import AuthKind, RefoldCredentials
from bot.refold.errors import (
    MalformedResponse,
    NotFound,
    RateLimited,
    RequestRejected,
    Unauthorized,
    Unreachable,
    UpstreamError,
)
from bot.refold.ids import InvalidExecutionId
from tests.fakes.refold import LEGACY_401, FakeRefold, Fault, errored_doc

EXEC_ID = "65410cf6cdf931a12d7ab009"


def api_key_creds(refold: FakeRefold, key: str = "tk_test_key", account: str = "acme") -> RefoldCredentials:
    refold.api_keys.add(key)
    return RefoldCredentials(refold.url, AuthKind.API_KEY, SecretStr(key), account)


@pytest.fixture
async def client():
    async with make_http_client(2.0) as http:
        yield RefoldClient(http, RetryPolicy(attempts=3, total_seconds=10, wait_initial=0.01, wait_max=0.02))


async def test_api_key_auth_reads_current_generation(refold: FakeRefold, client: RefoldClient) -> None:
    refold.add_execution(EXEC_ID, errored_doc(), linked_account_id="acme")
    execution = await client.get_execution(api_key_creds(refold), EXEC_ID.upper())
    assert execution.id == EXEC_ID
    assert execution.status == "ERRORED"
    assert [n.node_name for n in execution.failing_nodes] == ["Create contact"]
    sent = refold.requests[-1]
    assert sent["headers"]["x-api-key"] == "tk_test_key"
    assert sent["headers"]["linked_account_id"] == "acme"
    assert "Authorization" not in sent["headers"]


async def test_requests_name_the_bot_and_its_installed_release(
    refold: FakeRefold, client: RefoldClient
) -> None:
    refold.add_execution(EXEC_ID, errored_doc(), linked_account_id="acme")
    await client.get_execution(api_key_creds(refold), EXEC_ID)
    headers = {name.lower(): value for name, value in refold.requests[-1]["headers"].items()}
    assert headers["user-agent"] == f"refold-execution-bot/{version('refold-execution-bot')}"


async def test_session_token_auth(refold: FakeRefold, client: RefoldClient) -> None:
    refold.session_tokens["st_abc"] = "acme"
    refold.add_execution(EXEC_ID, errored_doc(), linked_account_id="acme")
    creds = RefoldCredentials(refold.url, AuthKind.SESSION_TOKEN, SecretStr("st_abc"), "acme")
    execution = await client.get_execution(creds, EXEC_ID)
    assert execution.name == "Export contact to HubSpot"
    sent = refold.requests[-1]["headers"]
    assert sent["Authorization"] == "Bearer st_abc"
    assert "x-api-key" not in sent


async def test_legacy_generation_and_linked_account_override(
    refold: FakeRefold, client: RefoldClient
) -> None:
    legacy = {
        "_id": EXEC_ID,
        "createdAt": "2023-10-31T14:19:34.788Z",
        "name": "Retry",
        "status": "ERRORED",
        "associated_workflow": {"_id": "w", "name": "Post message", "icon": ""},
    }
    refold.add_execution(EXEC_ID, legacy, linked_account_id="other@example.com")
    creds = api_key_creds(refold)
    with pytest.raises(NotFound):
        await client.get_execution(creds, EXEC_ID)
    execution = await client.get_execution(creds, EXEC_ID, "other@example.com")
    assert execution.workflow is not None and execution.workflow.name == "Post message"
    assert refold.requests[-1]["headers"]["linked_account_id"] == "other@example.com"


async def test_not_found_carries_refold_fields(refold: FakeRefold, client: RefoldClient) -> None:
    with pytest.raises(NotFound) as caught:
        await client.get_execution(api_key_creds(refold), EXEC_ID)
    assert caught.value.error_code == "RESOURCE_NOT_FOUND"
    assert caught.value.message == "Execution not found"
    assert refold.count("get") == 1  # a 404 is never retried


async def test_unauthorized_with_the_invalid_json_legacy_body(
    refold: FakeRefold, client: RefoldClient
) -> None:
    creds = RefoldCredentials(refold.url, AuthKind.API_KEY, SecretStr("tk_wrong"), "acme")
    with pytest.raises(Unauthorized) as caught:
        await client.get_execution(creds, EXEC_ID)
    assert caught.value.message == "Invalid Credentials"
    assert caught.value.request_id == "89bd1675-a826-46cb-9210-6cb2ae169f67"
    assert caught.value.error_code == "SERVER_ERROR"
    assert "tk_wrong" not in str(caught.value)
    assert refold.count("get") == 1


async def test_forbidden_maps_to_unauthorized(refold: FakeRefold, client: RefoldClient) -> None:
    refold.inject(Fault(status=403, body='{"message": "Forbidden", "request_id": "r-403"}'))
    with pytest.raises(Unauthorized) as caught:
        await client.get_execution(api_key_creds(refold), EXEC_ID)
    assert caught.value.request_id == "r-403"


async def test_other_4xx_is_rejected_with_message(refold: FakeRefold, client: RefoldClient) -> None:
    creds = RefoldCredentials(refold.url, AuthKind.API_KEY, SecretStr("tk_test_key"), None)
    refold.api_keys.add("tk_test_key")
    with pytest.raises(RequestRejected) as caught:
        await client.get_execution(creds, EXEC_ID)
    assert "linked_account_id or org_id is required" in caught.value.message


async def test_429_is_retried_then_reported(refold: FakeRefold, client: RefoldClient) -> None:
    refold.inject(Fault(status=429, body='{"message": "Too many requests"}', times=10))
    with pytest.raises(RateLimited):
        await client.get_execution(api_key_creds(refold), EXEC_ID)
    assert refold.count("get") == 3


@pytest.mark.parametrize("status", [502, 503, 504])
async def test_transient_5xx_is_retried_and_recovers(
    refold: FakeRefold, client: RefoldClient, status: int
) -> None:
    refold.add_execution(EXEC_ID, errored_doc())
    refold.inject(
        Fault(
            status=status, body="<html><title>Bad Gateway</title></html>", content_type="text/html", times=2
        )
    )
    execution = await client.get_execution(api_key_creds(refold), EXEC_ID)
    assert execution.status == "ERRORED"
    assert refold.count("get") == 3


async def test_500_is_not_retried_and_reads_html(refold: FakeRefold, client: RefoldClient) -> None:
    refold.inject(
        Fault(
            status=500,
            body="<html><head><title>Internal oops</title></head><body>x</body></html>",
            content_type="text/html",
        )
    )
    with pytest.raises(UpstreamError) as caught:
        await client.get_execution(api_key_creds(refold), EXEC_ID)
    assert caught.value.status_code == 500
    assert caught.value.message == "Internal oops"
    assert refold.count("get") == 1


async def test_timeout_is_retried_then_unreachable(refold: FakeRefold) -> None:
    refold.inject(Fault(status=200, body="{}", delay=1.0, times=5))
    async with make_http_client(0.2) as http:
        client = RefoldClient(
            http, RetryPolicy(attempts=3, total_seconds=10, wait_initial=0.01, wait_max=0.02)
        )
        with pytest.raises(Unreachable):
            await client.get_execution(api_key_creds(refold), EXEC_ID)
    assert refold.count("get") == 3


async def test_connection_refused_is_unreachable(client: RefoldClient) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    creds = RefoldCredentials(f"http://127.0.0.1:{port}", AuthKind.API_KEY, SecretStr("tk_x"), "acme")
    with pytest.raises(Unreachable):
        await client.get_execution(creds, EXEC_ID)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("not json at all", "text/plain"),
        ('{"name": "trunc', "application/json"),
        ("", "application/json"),
        ("[1, 2, 3]", "application/json"),
        ('{"nodes": "should be a list", "status": "RUNNING"}', "application/json"),
        # No status: the card could only guess, and "still running" would mislead.
        ("{}", "application/json"),
        ('{"name": "Nightly sync", "status": null, "nodes": []}', "application/json"),
        ('{"name": "Nightly sync", "status": "  "}', "application/json"),
    ],
)
async def test_malformed_success_bodies(
    refold: FakeRefold, client: RefoldClient, body: str, content_type: str
) -> None:
    refold.inject(Fault(status=200, body=body, content_type=content_type))
    with pytest.raises(MalformedResponse):
        await client.get_execution(api_key_creds(refold), EXEC_ID)
    assert refold.count("get") == 1


async def test_redirects_are_not_followed(refold: FakeRefold, client: RefoldClient) -> None:
    refold.inject(Fault(status=302, body=""))
    with pytest.raises(UpstreamError):
        await client.get_execution(api_key_creds(refold), EXEC_ID)
    assert refold.count("get") == 1


def test_legacy_401_body_is_really_invalid_json() -> None:
    import json

    with pytest.raises(ValueError):
        json.loads(LEGACY_401)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        " ",
        "../../etc/passwd",
        "65410cf6cdf931a12d7ab00",
        "65410cf6cdf931a12d7ab0099",
        "65410cf6cdf931a12d7ab00g",
        "６５410cf6cdf931a12d7ab009",
        "65410cf6cdf931a12d7ab0%2F",
        "x" * 10_000,
        "65410cf6cdf931a12d7ab009/../x",
        "65410cf6cdf931a12d7ab009\n",
        "١٢٣٤٥٦٧٨٩٠١٢٣٤٥٦٧٨٩٠١٢٣٤",
    ],
)
async def test_invalid_ids_never_reach_refold(refold: FakeRefold, client: RefoldClient, bad: str) -> None:
    if bad == "65410cf6cdf931a12d7ab009\n":
        # Trimming is allowed: surrounding whitespace is not part of the ID.
        refold.add_execution("65410cf6cdf931a12d7ab009", errored_doc())
        await client.get_execution(api_key_creds(refold), bad)
        assert refold.count("get") == 1
        return
    with pytest.raises(InvalidExecutionId):
        await client.get_execution(api_key_creds(refold), bad)
    assert sum(refold.calls.values()) == 0


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_generated_ids_never_reach_the_network(raw: str) -> None:
    import asyncio
    import re

    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(404, json={"message": "Execution not found"})

    async def attempt() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            creds = RefoldCredentials("https://app.refold.ai", AuthKind.API_KEY, SecretStr("tk"), "a")
            with contextlib.suppress(InvalidExecutionId, NotFound):
                await RefoldClient(http).get_execution(creds, raw)

    asyncio.run(attempt())
    valid = re.fullmatch(r"[0-9a-fA-F]{24}", raw.strip()) is not None
    assert len(sent) == (1 if valid else 0)
    if sent:
        assert sent[0].url.path == f"/api/v2/public/execution/{raw.strip().lower()}"


async def test_list_executions_for_validation(refold: FakeRefold, client: RefoldClient) -> None:
    refold.add_execution(EXEC_ID, errored_doc())
    data = await client.list_executions(api_key_creds(refold), limit=1)
    assert data["limit"] == 1 and data["totalDocs"] == 1
    assert refold.requests[-1]["query"] == {"page": "1", "limit": "1"}


async def test_rerun_and_stop(refold: FakeRefold, client: RefoldClient) -> None:
    refold.add_execution(EXEC_ID, errored_doc())
    creds = api_key_creds(refold)
    new_id = await client.rerun_execution(creds, EXEC_ID)
    assert refold.reruns == [(EXEC_ID, new_id)]
    await client.stop_execution(creds, EXEC_ID)
    assert refold.count("rerun") == 1 and refold.count("stop") == 1
    assert (await client.get_execution(creds, EXEC_ID)).status == "STOPPING"
    assert (await client.get_execution(creds, EXEC_ID)).status == "STOPPED"


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_a_rerun_is_never_sent_twice_after_a_server_error(
    refold: FakeRefold, client: RefoldClient, status: int
) -> None:
    # The first rerun may have started a run before the error: sending it again could start a second.
    refold.add_execution(EXEC_ID, errored_doc())
    refold.inject(Fault(status=status, body="{}", endpoint="rerun"))
    with pytest.raises(UpstreamError):
        await client.rerun_execution(api_key_creds(refold), EXEC_ID)
    assert refold.count("rerun") == 1 and refold.reruns == []


async def test_a_rerun_refused_with_429_is_sent_again(refold: FakeRefold, client: RefoldClient) -> None:
    refold.add_execution(EXEC_ID, errored_doc())
    refold.inject(Fault(status=429, body="{}", endpoint="rerun"))
    new_id = await client.rerun_execution(api_key_creds(refold), EXEC_ID)
    assert refold.count("rerun") == 2 and refold.reruns == [(EXEC_ID, new_id)]


@pytest.mark.parametrize("body", [{"message": "Execution queued"}, {"instanceId": "nope"}, []])
async def test_a_rerun_answer_without_the_new_id_is_malformed(
    refold: FakeRefold, client: RefoldClient, body: object
) -> None:
    refold.add_execution(EXEC_ID, errored_doc())
    refold.inject(Fault(status=200, body=json.dumps(body), endpoint="rerun"))
    with pytest.raises(MalformedResponse):
        await client.rerun_execution(api_key_creds(refold), EXEC_ID)


async def test_a_rerun_answer_naming_id_as_the_schema_does_is_read(
    refold: FakeRefold, client: RefoldClient
) -> None:
    refold.add_execution(EXEC_ID, errored_doc())
    new_id = "6a3149efd396207fd24f7aad"
    refold.inject(Fault(status=200, body=json.dumps({"status": "QUEUED", "id": new_id}), endpoint="rerun"))
    assert await client.rerun_execution(api_key_creds(refold), EXEC_ID) == new_id


class CountingGate:
    """A rate limiter that grants every turn at once and counts them."""

    def __init__(self) -> None:
        self.asked = 0

    async def acquire(self, key: str, *, again: bool = False) -> float:
        self.asked += 1
        return time.monotonic()


async def test_a_turn_taken_before_the_call_is_not_asked_for_again(refold: FakeRefold) -> None:
    refold.add_execution(EXEC_ID, errored_doc(), linked_account_id="acme")
    gate = CountingGate()
    async with make_http_client(2.0) as http:
        client = RefoldClient(http, RetryPolicy(attempts=1), gate)
        await client.get_execution(api_key_creds(refold), EXEC_ID, admitted_at=time.monotonic())
        assert gate.asked == 0
        # One taken long ago has refilled others' budget meanwhile: the call waits in line for its own.
        await client.get_execution(api_key_creds(refold), EXEC_ID, admitted_at=time.monotonic() - 60)
        assert gate.asked == 1
    assert refold.count("get") == 2
