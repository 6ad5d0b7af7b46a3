"""The Slack fake's rate limits and its channel view: a fake that lies would let pacing bugs through."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from tests.fakes.slack import FakeSlack, RateLimits

A = "xoxb-workspace-a"
B = "xoxb-workspace-b"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def _server() -> Iterator[FakeSlack]:
    # Its own server: turning limits on must not leak into the shared one.
    server = FakeSlack().start()
    yield server
    server.stop()


@pytest.fixture
def slack(_server: FakeSlack) -> FakeSlack:
    _server.reset()
    return _server


@pytest.fixture
def clock(slack: FakeSlack) -> Clock:
    clock = Clock()
    slack.clock = clock
    return clock


@pytest.fixture
def http(slack: FakeSlack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{slack.url}/api/") as client:
        yield client


def call(http: httpx.Client, method: str, token: str = A, **args: Any) -> httpx.Response:
    return http.post(method, json=args, headers={"Authorization": f"Bearer {token}"})


def post(http: httpx.Client, channel: str = "C1", token: str = A, **args: Any) -> httpx.Response:
    return call(http, "chat.postMessage", token, **{"channel": channel, "text": "hi", **args})


def assert_refused(response: httpx.Response, retry_after: int) -> None:
    assert response.status_code == 429
    assert response.json() == {"ok": False, "error": "ratelimited"}
    assert response.headers["Retry-After"] == str(retry_after)


def test_posts_beyond_the_burst_are_refused_with_retry_after(
    slack: FakeSlack, clock: Clock, http: httpx.Client
) -> None:
    slack.enforce_limits()
    assert [post(http).status_code for _ in range(4)] == [200] * 4
    assert_refused(post(http), 1)
    assert len(slack.calls_to("chat.postMessage")) == 4
    assert len(slack.accepted_calls_to("chat.postMessage")) == 4
    assert len(slack.refused_to("chat.postMessage")) == 1
    clock.now += 0.5
    assert_refused(post(http), 1)  # half a token is not a message
    clock.now += 0.5
    assert post(http).status_code == 200
    assert post(http).status_code == 429
    # A long pause refills the bucket to its capacity, no further.
    clock.now += 3600
    assert [post(http).status_code for _ in range(5)] == [200] * 4 + [429]


def test_a_steady_one_per_second_is_never_refused(slack: FakeSlack, clock: Clock, http: httpx.Client) -> None:
    slack.enforce_limits()
    for _ in range(30):
        assert post(http).status_code == 200
        clock.now += 1
    assert slack.refused == []


def test_each_channel_and_workspace_has_its_own_bucket(
    slack: FakeSlack, clock: Clock, http: httpx.Client
) -> None:
    slack.enforce_limits()
    for _ in range(4):
        post(http, "C1")
    assert post(http, "C1").status_code == 429
    assert [post(http, "C2").status_code for _ in range(5)] == [200] * 4 + [429]
    assert [post(http, "C1", B).status_code for _ in range(5)] == [200] * 4 + [429]


def test_tokens_of_one_known_team_share_its_limits(
    slack: FakeSlack, clock: Clock, http: httpx.Client
) -> None:
    slack.bots.update({A: {"team_id": "T9"}, B: {"team_id": "T9"}})
    slack.enforce_limits()
    for token in (A, B, A, B):
        assert post(http, token=token).status_code == 200
    assert post(http, token=B).status_code == 429


@pytest.mark.parametrize(
    ("method", "quota"),
    [
        ("chat.update", 50),
        ("chat.delete", 50),
        ("chat.unfurl", 50),
        ("conversations.open", 50),
        ("views.open", 100),
        ("views.publish", 100),
        ("users.info", 100),
        ("usergroups.list", 20),
        ("usergroups.users.list", 20),
    ],
)
def test_tiered_methods_refuse_past_their_quota_per_workspace(
    slack: FakeSlack, clock: Clock, http: httpx.Client, method: str, quota: int
) -> None:
    slack.usergroups["S1"] = ("Ops", ["U1"])
    slack.enforce_limits()
    args = {"channel": "C1", "ts": "1.1", "usergroup": "S1", "user": "U1", "users": "U1"}
    for i in range(quota):
        assert call(http, method, **args).status_code == 200, i
        clock.now += 0.1
    # The window opened 0.1 s × quota ago: the first call leaves it that much sooner than a minute.
    assert_refused(call(http, method, **args), 60 - int(0.1 * quota))
    assert call(http, method, B, **args).status_code == 200  # another workspace's quota
    assert call(http, "chat.postMessage", channel="C9", text="x").status_code == 200  # another method
    clock.now += 60
    assert call(http, method, **args).status_code == 200
    assert len(slack.refused_to(method)) == 1 and len(slack.calls_to(method)) == quota + 2


def test_the_51st_update_in_a_minute_is_refused_with_a_whole_retry_after(
    slack: FakeSlack, clock: Clock, http: httpx.Client
) -> None:
    slack.enforce_limits()
    for _ in range(50):
        call(http, "chat.update", channel="C1", ts="1.1", text="x")
    clock.now += 59.5
    assert_refused(call(http, "chat.update", channel="C1", ts="1.1", text="x"), 1)
    clock.now += 0.5
    assert call(http, "chat.update", channel="C1", ts="1.1", text="x").status_code == 200


def test_untiered_methods_and_disabled_limits_refuse_nothing(
    slack: FakeSlack, clock: Clock, http: httpx.Client
) -> None:
    slack.enforce_limits()
    assert all(call(http, "auth.test").status_code == 200 for _ in range(150))
    slack.enforce_limits(False)
    assert all(post(http).status_code == 200 for _ in range(50))
    assert all(call(http, "chat.update", channel="C1", ts="1.1").status_code == 200 for _ in range(60))
    assert slack.refused == []


def test_limits_are_off_by_default_and_after_reset(slack: FakeSlack, http: httpx.Client) -> None:
    assert slack.limits is None
    assert all(post(http).status_code == 200 for _ in range(20))
    slack.enforce_limits()
    post(http, "C7")
    slack.reset()
    assert slack.limits is None and slack.refused == [] and slack.calls == []


def test_limits_can_be_tightened(slack: FakeSlack, clock: Clock, http: httpx.Client) -> None:
    slack.enforce_limits(limits=RateLimits(post_burst=1, tier_per_minute={2: 1, 3: 2, 4: 3}))
    assert [post(http).status_code for _ in range(2)] == [200, 429]
    assert [call(http, "chat.update", ts="1.1").status_code for _ in range(3)] == [200, 200, 429]


def test_a_refusal_comes_before_programmed_errors(slack: FakeSlack, clock: Clock, http: httpx.Client) -> None:
    slack.enforce_limits(limits=RateLimits(post_burst=1))
    post(http)
    slack.fail("chat.postMessage", "not_in_channel")
    assert post(http).status_code == 429
    clock.now += 1
    answer = post(http)
    assert answer.status_code == 200 and answer.json() == {"ok": False, "error": "not_in_channel"}
    assert len(slack.calls_to("chat.postMessage")) == 2  # programmed errors still count as calls
    assert len(slack.accepted_calls_to("chat.postMessage")) == 1


def test_slack_sdk_reads_the_refusal(slack: FakeSlack, clock: Clock) -> None:
    slack.enforce_limits()
    client = WebClient(token=A, base_url=f"{slack.url}/api/")
    for _ in range(4):
        client.chat_postMessage(channel="C1", text="hi")
    with pytest.raises(SlackApiError) as refused:
        client.chat_postMessage(channel="C1", text="hi")
    response = refused.value.response
    assert response.status_code == 429 and response["error"] == "ratelimited"
    retry_after = response.headers["Retry-After"]
    assert int(retry_after[0] if isinstance(retry_after, list) else retry_after) == 1


def test_channel_messages_shows_the_latest_version_and_threads(slack: FakeSlack, http: httpx.Client) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "first"}}]
    # Form-encoded, as slack_sdk sends it: blocks arrive as a JSON string.
    first = http.post(
        "chat.postMessage",
        data={"token": A, "channel": "C1", "text": "first", "blocks": json.dumps(blocks)},
    ).json()
    reply = post(http, thread_ts=first["ts"], text="in the thread").json()
    second = post(http, text="second").json()
    post(http, thread_ts="1700000000.000100", text="under someone else's message")
    post(http, "C2", text="elsewhere")
    new_blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "updated"}}]
    updated = call(http, "chat.update", channel="C1", ts=first["ts"], blocks=new_blocks).json()
    assert updated["ts"] == first["ts"]  # Slack keeps an edited message's ts
    call(http, "chat.update", channel="C1", ts=reply["ts"], text="reply, edited")
    call(http, "chat.delete", channel="C1", ts=second["ts"])
    slack.not_member.add("C1")
    post(http, text="refused: not in channel")  # answered ok=false, so never shown

    (top,) = slack.channel_messages("C1")
    assert (top.ts, top.text, top.blocks, top.thread_ts, top.updates) == (
        first["ts"],
        "first",
        new_blocks,
        None,
        1,
    )
    assert [(r.text, r.thread_ts) for r in top.replies] == [("reply, edited", first["ts"])]
    assert [m.text for m in slack.thread("C1", "1700000000.000100")] == ["under someone else's message"]
    assert [m.text for m in slack.channel_messages("C2")] == ["elsewhere"]
    found = slack.message("C1", reply["ts"])
    assert found is not None and found.text == "reply, edited"
    assert slack.channel_messages("C3") == []
