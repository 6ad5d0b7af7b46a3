"""manifest.yml is a valid Slack manifest, and it matches the listeners the app registers."""

from __future__ import annotations

import json

import jsonschema
import pytest
import yaml
from cryptography.fernet import Fernet
from pydantic import SecretStr

from bot.app import build_app, register_surfaces
from bot.container import build_container
from bot.render.buttons import CARD_ACTIONS, INCIDENT_ACTIONS
from bot.render.home import HOME_ACTIONS
from bot.render.modals import CONNECT_ACTIONS, CONNECT_VIEW
from bot.settings import Settings
from tests.conftest import DATA, ROOT

MANIFESTS = ("manifest.yml", "manifest.socket-mode.yml")
every_manifest = pytest.mark.parametrize("name", MANIFESTS)


def manifest(name: str = "manifest.yml") -> dict:
    return yaml.safe_load((ROOT / name).read_text())


@every_manifest
def test_manifest_validates_against_the_schema(name: str) -> None:
    schema = json.loads((DATA / "schemas" / "slack-app-manifest.json").read_text())
    jsonschema.validate(manifest(name), schema)


def test_the_socket_mode_manifest_is_the_http_one_without_urls() -> None:
    http, socket = manifest(), manifest("manifest.socket-mode.yml")
    assert (
        socket["settings"]["socket_mode_enabled"] is True and http["settings"]["socket_mode_enabled"] is False
    )
    assert (
        "bot.example.com"
        not in (ROOT / "manifest.socket-mode.yml").read_text().split("display_information")[1]
    )
    for side in (http, socket):
        for command in side["features"]["slash_commands"]:
            command.pop("url", None)
        side["settings"]["event_subscriptions"].pop("request_url", None)
        side["settings"]["interactivity"].pop("request_url", None)
        side["oauth_config"].pop("redirect_urls", None)
        side["settings"].pop("socket_mode_enabled")
    assert socket == http  # the same app otherwise: commands, shortcut, scopes, events


class RecordingApp:
    """Stands in for AsyncApp while the surfaces register, noting every name they listen for."""

    def __init__(self) -> None:
        self.names: set[str] = set()

    def __getattr__(self, kind: str):
        def decorator_factory(constraint, *args, **kwargs):
            self.names.add(constraint)
            return lambda listener: listener

        return decorator_factory


def make_settings(slack_api_url: str = "https://slack.com/api/") -> Settings:
    return Settings(
        slack_signing_secret=SecretStr("s"),
        slack_bot_token=SecretStr("xoxb-1"),
        slack_api_url=slack_api_url,
        credentials_key=SecretStr(Fernet.generate_key().decode()),
        _env_file=None,
    )


def registered_names() -> set[str]:
    recorder = RecordingApp()
    settings = make_settings()
    register_surfaces(recorder, build_container(settings))
    return recorder.names


@every_manifest
def test_manifest_and_listeners_match_both_ways(name: str) -> None:
    m = manifest(name)
    commands = {c["command"] for c in m["features"]["slash_commands"]}
    shortcuts = {s["callback_id"] for s in m["features"]["shortcuts"]}
    events = set(m["settings"]["event_subscriptions"]["bot_events"])
    ui_ids = (
        set(CARD_ACTIONS)
        | set(INCIDENT_ACTIONS)
        | set(CONNECT_ACTIONS)
        | {CONNECT_VIEW}
        | set(HOME_ACTIONS)
        | events
    )
    names = registered_names()
    assert commands | shortcuts | ui_ids <= names, (
        f"without a listener: {(commands | shortcuts | ui_ids) - names}"
    )
    assert names <= commands | shortcuts | ui_ids, (
        f"listeners for nothing: {names - commands - shortcuts - ui_ids}"
    )


async def test_the_real_app_handles_every_declared_surface(slack) -> None:
    """Bolt answers 404 to a request no listener matches; none of ours may get one."""
    from urllib.parse import urlencode

    from slack_bolt.request.async_request import AsyncBoltRequest

    settings = make_settings(f"{slack.url}/api/")
    app = build_app(build_container(settings))
    m = manifest()
    bodies = [
        urlencode(
            {
                "command": c["command"],
                "text": "help",
                "team_id": "T1",
                "user_id": "U1",
                "response_url": "http://127.0.0.1:9/r",
                "trigger_id": "t",
            }
        )
        for c in m["features"]["slash_commands"]
    ]
    unmatched = await app.async_dispatch(
        AsyncBoltRequest(
            body=urlencode(
                {
                    "payload": json.dumps(
                        {
                            "type": "block_actions",
                            "team": {"id": "T1"},
                            "user": {"id": "U1"},
                            "actions": [{"action_id": "nobody_listens", "value": "x"}],
                        }
                    )
                }
            ),
            mode="socket_mode",
        )
    )
    assert unmatched.status == 404  # the probe itself can fail
    for body in bodies:
        response = await app.async_dispatch(AsyncBoltRequest(body=body, mode="socket_mode"))
        assert response.status == 200, body


@every_manifest
def test_manifest_asks_only_for_the_scopes_used(name: str) -> None:
    assert set(manifest(name)["oauth_config"]["scopes"]["bot"]) == {
        "commands",
        "chat:write",
        "chat:write.public",
        "users:read",
        "im:write",
        "usergroups:read",
        "links:read",
        "links:write",
    }
