"""The Slack manifest asks for exactly what the adapter uses."""

from __future__ import annotations

from pathlib import Path

import yaml

from adapters.slack import SCOPES

MANIFEST = Path(__file__).parents[1] / "slack-manifest.yml"


def test_manifest_matches_the_adapter() -> None:
    m = yaml.safe_load(MANIFEST.read_text())
    assert sorted(m["oauth_config"]["scopes"]["bot"]) == sorted(SCOPES)
    [command] = m["features"]["slash_commands"]
    assert command["command"] == "/quiz" and command["url"].endswith("/slack/events")
    events = m["settings"]["event_subscriptions"]
    assert events["request_url"].endswith("/slack/events")
    assert {"message.channels", "message.groups", "app_home_opened"} <= set(events["bot_events"])
    assert m["settings"]["interactivity"]["is_enabled"] and m["settings"]["interactivity"]["request_url"].endswith(
        "/slack/events"
    )
    assert m["oauth_config"]["redirect_urls"][0].endswith("/slack/oauth_redirect")
    assert m["features"]["app_home"]["home_tab_enabled"]
