"""Hostile input, hand-written and generated, through the real server.

Every case must get a clear answer, cause no unhandled exception, make no Refold call for an invalid
ID, and never let user- or Refold-controlled text ping a channel or forge a link.
"""

from __future__ import annotations

import itertools
import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.parse import find_executions
from tests.fakes.refold import FakeRefold, errored_doc
from tests.fakes.slack import FakeSlack
from tests.harness import API_KEY, EXEC_ID, BotServer, block_actions, connect, message_shortcut

_keys = itertools.count()
HYPOTHESIS = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
MENTIONS = re.compile(r"<!(channel|here|everyone)|<@U123|<https?://evil")


@pytest.fixture
def connected(
    bot: BotServer, refold: FakeRefold, slack: FakeSlack, redis_url: str, bot_key: str
) -> BotServer:
    refold.api_keys.add(API_KEY)
    refold.add_execution(EXEC_ID, errored_doc(), linked_account_id="acme")
    connect(redis_url, bot_key)
    return bot


def independent_is_lookup(text: str) -> bool:
    words = [w.strip("`'\"“”‘’") for w in re.sub(r"<[^<>|]*\|([^<>]*)>", r"\1", text).split()]
    words = [w for w in words if w]
    return bool(words) and re.fullmatch(r"[0-9a-fA-F]{24}", words[0]) is not None


def everything_sent_to_slack(slack: FakeSlack) -> str:
    with slack.lock:
        return json.dumps([c.args for c in slack.calls] + slack.responses, ensure_ascii=False)


def assert_no_pings(slack: FakeSlack) -> None:
    assert not MENTIONS.search(everything_sent_to_slack(slack)), "user or Refold text reached Slack unescaped"


def command_case(bot: BotServer, refold: FakeRefold, slack: FakeSlack, text: str) -> None:
    key = f"cmd{next(_keys)}"
    calls_before = sum(refold.calls.values())
    ack = bot.command(text, slack.response_url(key))
    assert ack.status_code == 200
    if ack.text:
        answer = ack.json()["text"]
    else:
        verb = text.strip().lower()
        if verb in {"connect", "disconnect"}:
            answer = slack.wait_responses(key)[0]["text"]  # U1 is not an admin
        else:
            answer = slack.wait_responses(key)[0].get("text", "")
    assert answer.strip(), f"no answer for {text!r}"
    if not independent_is_lookup(text):
        assert sum(refold.calls.values()) == calls_before, f"Refold was called for {text!r}"


HAND_WRITTEN_COMMANDS = [
    "",
    " ",
    "help",
    "HELP",
    "status",
    "connect",
    "disconnect",
    "connect now",
    "status please",
    "frobnicate",
    EXEC_ID,
    EXEC_ID.upper(),
    f"  {EXEC_ID}  ",
    f"`{EXEC_ID}`",
    f"{EXEC_ID} acme",
    f"{EXEC_ID} <mailto:a@b.com|a@b.com>",
    f"{EXEC_ID} a b",
    "../../etc/passwd",
    "..%2F..%2Fetc",
    EXEC_ID[:-1],
    EXEC_ID + "0",
    EXEC_ID[:-1] + "g",
    "６５410cf6cdf931a12d7ab009",
    "٦٥٤١٠cf6cdf931a12d7ab009",
    "<!channel>",
    "<!here> " + EXEC_ID,
    "<@U123>",
    "<https://evil.example|click>",
    "*bold* _it_ ~strike~ `code` ```block```",
    "\u202e" + EXEC_ID,
    EXEC_ID + "\u200b",
    "\u200b\u200b\u200b",
    "😀" * 500,
    "x" * 10_000,
    "\x00" + EXEC_ID,
    "a\nb\nc",
    f"{EXEC_ID} " + "a" * 300,
    f"{EXEC_ID} \x07bell",
    "' OR 1=1 --",
    "{{7*7}}",
    "${jndi:ldap://x}",
    "%s%s%s%n",
    "null",
    "undefined",
    "NaN",
]


@pytest.mark.parametrize("text", HAND_WRITTEN_COMMANDS)
def test_hand_written_command_text(
    text: str, connected: BotServer, refold: FakeRefold, slack: FakeSlack
) -> None:
    command_case(connected, refold, slack, text)
    assert_no_pings(slack)


@HYPOTHESIS
@given(st.text(max_size=120) | st.from_regex(r"[0-9a-fA-F]{20,28}( [\w@.<>|:]{0,30})?", fullmatch=True))
def test_generated_command_text(
    connected: BotServer, refold: FakeRefold, slack: FakeSlack, text: str
) -> None:
    command_case(connected, refold, slack, text)


def shortcut_case(bot: BotServer, slack: FakeSlack, message: dict) -> None:
    """Send the shortcut and wait for its whole answer: one card or error per execution it names (at
    most 5), a note when it names more, or one "none found". Returning earlier would let the rest of
    the job run into the next test."""
    key = f"sc{next(_keys)}"
    posts_before = len(slack.calls_to("chat.postMessage"))
    found = len(find_executions(message))
    expected = max(1, min(found, 5) + (1 if found > 5 else 0))
    assert bot.interaction(message_shortcut(message, slack.response_url(key))).status_code == 200
    slack.wait_for(
        lambda s: (
            len(s._responses_unlocked(key)) + len(s.calls_to("chat.postMessage")) - posts_before >= expected
        )
    )


def deep_blocks(depth: int) -> list:
    block: dict = {"type": "text", "text": EXEC_ID}
    for _ in range(depth):
        block = {"type": "rich_text_section", "elements": [block]}
    return [{"type": "rich_text", "elements": [block]}]


HAND_WRITTEN_MESSAGES = [
    {"text": "x" * 1_000_000 + " " + EXEC_ID},
    # Just under the 1 MiB request cap (a larger body gets 413 unread: test_reliability_security).
    {"text": ("no ids here " * 85_000)},
    {"blocks": deep_blocks(300)},
    {"blocks": deep_blocks(5)},
    {"text": "\u202eRTL " + EXEC_ID + " \u202c"},
    {"text": "zero\u200bwidth\u200b" + EXEC_ID},
    {"text": "😀🔥 " + EXEC_ID + " 🧨"},
    {"text": "<!channel> <!here> " + EXEC_ID + " linked_account_id: <!everyone>"},
    {"text": f"{EXEC_ID} linked_account_id: <https://evil.example|acme>"},
    {"text": "*" * 5000},
    {"attachments": "not a list", "blocks": {"not": "a list"}},
    {"attachments": [None, 1, "x", {"fields": "nope"}]},
    {"blocks": [None, {"type": "section", "text": None}, {"type": "section", "fields": [None]}]},
    {"text": None},
    {"text": 12345},
    {},
    {"text": " ".join(f"{i:024x}" for i in range(50))},
    {"text": f"workflow_id: {EXEC_ID}"},
    {"text": f'"instance_id": "{EXEC_ID}", "linked_account_id": "' + "a" * 1000 + '"'},
    {"text": f"{EXEC_ID} linked account: \x00nul"},
]


@pytest.mark.parametrize(
    "message", HAND_WRITTEN_MESSAGES, ids=[f"m{i}" for i in range(len(HAND_WRITTEN_MESSAGES))]
)
def test_hand_written_shortcut_payloads(message: dict, connected: BotServer, slack: FakeSlack) -> None:
    shortcut_case(connected, slack, message)
    assert_no_pings(slack)


json_leaf = (
    st.none() | st.booleans() | st.integers() | st.text(max_size=60) | st.sampled_from([EXEC_ID, "<!here>"])
)
json_any = st.recursive(
    json_leaf,
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    max_leaves=20,
)
messages = st.fixed_dictionaries(
    {},
    optional={
        "text": st.text(max_size=200) | json_leaf,
        "attachments": json_any,
        "blocks": json_any,
    },
)


@HYPOTHESIS
@given(messages)
def test_generated_shortcut_payloads(connected: BotServer, slack: FakeSlack, message: dict) -> None:
    shortcut_case(connected, slack, message)


def action_case(bot: BotServer, refold: FakeRefold, slack: FakeSlack, value: str) -> dict:
    key = f"act{next(_keys)}"
    calls_before = sum(refold.calls.values())
    assert (
        bot.interaction(block_actions("refresh_execution", value, slack.response_url(key))).status_code == 200
    )
    reply = slack.wait_responses(key)[0]
    assert reply.get("text", "").strip()
    try:
        data = json.loads(value)
        valid = isinstance(data, dict) and re.fullmatch(r"[0-9a-fA-F]{24}", str(data.get("e", "")).strip())
    except ValueError:
        valid = False
    if not valid:
        assert sum(refold.calls.values()) == calls_before
    return reply


HAND_WRITTEN_VALUES = [
    "",
    "x",
    "null",
    "[]",
    "{}",
    '{"e": null}',
    '{"e": 1}',
    '{"e": "../../x"}',
    '{"e": "' + "a" * 10_000 + '"}',
    "x" * 10_000,
    json.dumps({"e": EXEC_ID, "a": "a" * 300}),
    json.dumps({"e": EXEC_ID, "a": "\x00"}),
    json.dumps({"e": EXEC_ID, "a": ["list"]}),
    json.dumps({"e": EXEC_ID, "a": "<!channel>"}),
    json.dumps({"e": EXEC_ID, "a": "other-tenant"}),
    json.dumps({"e": EXEC_ID.upper()}),
    json.dumps({"e": EXEC_ID, "secret": "please"}),
]


@pytest.mark.parametrize("value", HAND_WRITTEN_VALUES, ids=[f"v{i}" for i in range(len(HAND_WRITTEN_VALUES))])
def test_tampered_button_values(
    value: str, connected: BotServer, refold: FakeRefold, slack: FakeSlack
) -> None:
    action_case(connected, refold, slack, value)
    assert_no_pings(slack)


def test_another_tenants_linked_account_only_uses_the_clickers_own_key(
    connected: BotServer, refold: FakeRefold, slack: FakeSlack
) -> None:
    reply = action_case(connected, refold, slack, json.dumps({"e": EXEC_ID, "a": "other-tenant"}))
    assert "no execution with that ID" in reply["text"]
    (sent,) = [
        r["headers"] for r in refold.requests if r["headers"].get("linked_account_id") == "other-tenant"
    ]
    assert sent["x-api-key"] == API_KEY
    assert all(r["headers"].get("x-api-key") == API_KEY for r in refold.requests)


@HYPOTHESIS
@given(
    st.text(max_size=300)
    | st.builds(
        lambda e, a: json.dumps({"e": e, "a": a}),
        st.text(max_size=30) | st.just(EXEC_ID),
        st.none() | st.text(max_size=40),
    )
)
def test_generated_button_values(
    connected: BotServer, refold: FakeRefold, slack: FakeSlack, value: str
) -> None:
    action_case(connected, refold, slack, value)


EVIL = "<!channel> <!here> <@U123> <https://evil.example|click> *b* ```x``` \x00 \u202e 😀"
HOSTILE_DOCS = [
    {
        "name": EVIL,
        "status": EVIL,
        "environment": EVIL,
        "nodes": [{"node_name": EVIL, "node_status": EVIL, "latest_output": EVIL}],
    },
    {
        "name": "n",
        "status": "ERRORED",
        "nodes": [{"node_status": "Errored", "latest_output": "x" * 1_000_000}],
    },
    {
        "name": "n",
        "status": "ERRORED",
        "nodes": [{"node_status": "Errored", "latest_output": {"a": ["<!here>"] * 10_000}}],
    },
    {"status": None, "nodes": None},
    {"name": 12345, "status": 7, "completion_percentage": 1e300},
    {"name": "n", "completion_percentage": -50, "nodes": [{}] * 5000},
    {"name": "\x00" * 100, "status": "RUNNING"},
    {
        "name": "ok",
        "status": "RUNNING",
        "nodes": [{"node_name": "😀" * 1000, "execution_time": 10**15, "attempts_made": 10**9}],
    },
]


def doc_case(bot: BotServer, refold: FakeRefold, slack: FakeSlack, doc: dict) -> None:
    refold.add_execution(EXEC_ID, doc, linked_account_id="acme")
    key = f"doc{next(_keys)}"
    bot.command(EXEC_ID, slack.response_url(key))
    reply = slack.wait_responses(key)[0]
    assert reply.get("text", "").strip()
    blocks = [b for b in reply.get("blocks", []) if b["type"] != "header"]
    assert len(reply.get("blocks", [])) <= 50
    assert not MENTIONS.search(json.dumps(blocks, ensure_ascii=False) + reply["text"])


@pytest.mark.parametrize("doc", HOSTILE_DOCS, ids=[f"d{i}" for i in range(len(HOSTILE_DOCS))])
def test_hostile_refold_documents(
    doc: dict, connected: BotServer, refold: FakeRefold, slack: FakeSlack, redis_url: str
) -> None:
    doc_case(connected, refold, slack, doc)


@HYPOTHESIS
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "name",
                "status",
                "environment",
                "completion_percentage",
                "nodes",
                "linked_account_id",
                "createdAt",
            ]
        ),
        json_any,
        max_size=7,
    )
)
def test_generated_refold_documents(
    connected: BotServer, refold: FakeRefold, slack: FakeSlack, redis_url: str, doc: dict
) -> None:
    import redis as sync_redis

    sync_redis.Redis.from_url(redis_url).delete(
        *sync_redis.Redis.from_url(redis_url).keys("refold-bot:exec:*") or ["none"]
    )
    doc_case(connected, refold, slack, doc)


def test_no_unhandled_exception_in_the_whole_run(bot: BotServer) -> None:
    logs = bot.logs()
    assert "Traceback" not in logs and "failed unexpectedly" not in logs and "background task" not in logs
