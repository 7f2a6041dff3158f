"""Smoke tests of the fake Slack against the REAL slack-bolt AsyncApp and slack_sdk AsyncWebClient.

If these pass, the fake speaks the same wire format as the libraries the Slack adapter uses: signed requests
are accepted (and forged or stale ones refused), Web API calls parse, and rate-limit retries work.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from tests.fake_slack import (
    FakeSlackWebAPI,
    SlackClient,
    fake_slack_fixture,  # noqa: F401  (registers the `fake_slack` fixture)
    flatten_text,
    serve_web_app,
)

SIGNING_SECRET = "fake-signing-secret-0123456789abcdef"

QUESTION_BLOCKS = [
    {"type": "header", "text": {"type": "plain_text", "text": "Today's question"}},
    {"type": "section", "block_id": "q", "text": {"type": "mrkdwn", "text": "*What is a closure?*"}},
    {"type": "context", "elements": [{"type": "mrkdwn", "text": "Answer in the thread"}]},
    {
        "type": "actions",
        "block_id": "buttons",
        "elements": [
            {"type": "button", "action_id": "answer", "value": "q-1", "text": {"type": "plain_text", "text": "Answer"}}
        ],
    },
]

ANSWER_MODAL = {
    "type": "modal",
    "callback_id": "answer_modal",
    "title": {"type": "plain_text", "text": "Your answer"},
    "submit": {"type": "plain_text", "text": "Send"},
    "blocks": [
        {
            "type": "input",
            "block_id": "answer_block",
            "label": {"type": "plain_text", "text": "Answer"},
            "element": {"type": "plain_text_input", "action_id": "answer_input"},
        }
    ],
}


@dataclass
class Bot:
    """A real bolt app wired to the fake, and what its listeners saw."""

    app: AsyncApp
    slack: SlackClient
    fake: FakeSlackWebAPI
    seen: dict[str, list[Any]] = field(default_factory=lambda: defaultdict(list))


def build_app(fake: FakeSlackWebAPI, seen: dict[str, list[Any]]) -> AsyncApp:
    client = AsyncWebClient(token=fake.bot_token, base_url=fake.api_url)
    client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=1))
    # Only client=, not token= as well: bolt takes the client's token and warns if both are given.
    app = AsyncApp(signing_secret=SIGNING_SECRET, client=client)

    @app.command("/quiz")
    async def quiz(ack: Any, command: dict[str, Any], client: AsyncWebClient, respond: Any) -> None:
        await ack()
        seen["commands"].append(command)
        await client.chat_postMessage(channel=command["channel_id"], text="What is a closure?", blocks=QUESTION_BLOCKS)
        await respond(text=f"Posted a question about {command['text']}", response_type="ephemeral")

    @app.event("message")
    async def on_message(event: dict[str, Any], request: AsyncBoltRequest) -> None:
        seen["messages"].append(event)
        seen["retry_nums"].append(request.headers.get("x-slack-retry-num", [None])[0])

    @app.action("answer")
    async def on_answer(ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        seen["actions"].append(body)
        view = {**ANSWER_MODAL, "private_metadata": body["message"]["ts"]}
        seen["opened"].append(await client.views_open(trigger_id=body["trigger_id"], view=view))

    @app.view("answer_modal")
    async def on_submit(ack: Any, view: dict[str, Any]) -> None:
        answer = view["state"]["values"]["answer_block"]["answer_input"]["value"]
        if not answer.strip():
            await ack(response_action="errors", errors={"answer_block": "Write something first"})
            return
        await ack()
        seen["views"].append(view)

    return app


@pytest.fixture
async def bot(fake_slack: FakeSlackWebAPI) -> AsyncIterator[Bot]:
    seen: dict[str, list[Any]] = defaultdict(list)
    app = build_app(fake_slack, seen)
    async with serve_web_app(app.web_app(path="/slack/events")) as base_url:
        async with SlackClient(f"{base_url}/slack/events", SIGNING_SECRET, fake_slack) as slack:
            yield Bot(app=app, slack=slack, fake=fake_slack, seen=seen)


# ------------------------------------------------------------------ through bolt


async def test_url_verification_answers_the_challenge(bot: Bot) -> None:
    result = await bot.slack.url_verification()
    assert result.status == 200
    assert result.json() == {"challenge": result.sent["challenge"]}


async def test_slash_command_acks_posts_and_responds_ephemerally(bot: Bot) -> None:
    general = bot.fake.add_channel("general")
    alice = bot.fake.add_user("alice")

    result = await bot.slack.slash("/quiz", "python", alice, general)

    assert result.status == 200
    assert result.body == ""  # a bare ack() shows nothing
    [posted] = await bot.fake.wait_for(lambda: bot.fake.messages(general))
    assert posted["user"] == bot.fake.bot_user_id
    assert flatten_text(posted).splitlines() == [
        "Today's question",
        "*What is a closure?*",
        "Answer in the thread",
        "Answer",
    ]
    assert result.response_url_key is not None
    [response] = await bot.fake.wait_for(lambda: bot.fake.responses(result.response_url_key or ""))
    assert response == {"text": "Posted a question about python", "response_type": "ephemeral"}
    assert [flatten_text(m) for m in bot.fake.ephemerals(alice)] == ["Posted a question about python"]
    [command] = bot.seen["commands"]
    assert (command["user_id"], command["channel_name"], command["text"]) == (alice, "general", "python")
    # bolt called auth.test once to learn who it is, then did the work.
    assert [name for name, _ in bot.fake.calls] == ["auth.test", "chat.postMessage"]


async def test_rate_limited_post_is_retried_once_and_succeeds(bot: Bot) -> None:
    general = bot.fake.add_channel("general")
    alice = bot.fake.add_user("alice")
    bot.fake.fail_next("chat.postMessage", status=429, retry_after=0)

    await bot.slack.slash("/quiz", "python", alice, general)

    await bot.fake.wait_for(lambda: bot.fake.messages(general))
    assert len(bot.fake.calls_to("chat.postMessage")) == 2
    assert len(bot.fake.messages(general)) == 1


async def test_message_events_reach_the_handler_and_the_world(bot: Bot) -> None:
    general = bot.fake.add_channel("general")
    alice = bot.fake.add_user("alice")
    await bot.slack.slash("/quiz", "python", alice, general)
    [question] = await bot.fake.wait_for(lambda: bot.fake.messages(general))

    reply = bot.slack.message(general, alice, "A function with its environment", thread_ts=question["ts"])
    result = await bot.slack.event(reply)
    assert result.status == 200
    await bot.slack.event(bot.slack.message_changed(general, reply["ts"], "A function plus captured variables"))
    await bot.slack.event(bot.slack.message_deleted(general, reply["ts"]))
    # Slack redelivers the first event, same event_id, marked as a retry.
    await bot.slack.event(reply, event_id=result.event_id, retry_num=1)

    events = await bot.fake.wait_for(lambda: len(bot.seen["messages"]) == 4 and bot.seen["messages"])
    assert [e.get("subtype") for e in events] == [None, "message_changed", "message_deleted", None]
    assert events[0]["thread_ts"] == question["ts"] and events[0]["parent_user_id"] == bot.fake.bot_user_id
    assert events[1]["message"]["text"] == "A function plus captured variables"
    assert events[1]["previous_message"]["text"] == "A function with its environment"
    assert events[2]["deleted_ts"] == reply["ts"]
    assert bot.seen["retry_nums"] == [None, None, None, "1"]
    assert bot.fake.thread(general, question["ts"]) == [question]  # the reply was deleted
    assert bot.fake.message(general, question["ts"])["reply_count"] == 0  # type: ignore[index]
    assert [m["text"] for m in bot.fake.deleted()] == ["A function plus captured variables"]


@pytest.mark.parametrize("tamper", ["bad_signature", "stale_timestamp"])
async def test_forged_or_stale_requests_are_refused(bot: Bot, tamper: str) -> None:
    general = bot.fake.add_channel("general")
    alice = bot.fake.add_user("alice")
    setattr(bot.slack, tamper, True)

    assert (await bot.slack.slash("/quiz", "python", alice, general)).status == 401
    assert (await bot.slack.event(bot.slack.message(general, alice, "hi"))).status == 401
    assert (await bot.slack.url_verification()).status == 401

    await asyncio.sleep(0.1)
    assert not bot.seen["commands"] and not bot.seen["messages"]
    assert bot.fake.calls == []  # rejected before bolt's auth.test


async def test_button_opens_a_modal_and_submission_reaches_the_view_handler(bot: Bot) -> None:
    general = bot.fake.add_channel("general")
    alice = bot.fake.add_user("alice")
    await bot.slack.slash("/quiz", "python", alice, general)
    [question] = await bot.fake.wait_for(lambda: bot.fake.messages(general))

    pressed = await bot.slack.block_action(alice, general, "answer", "q-1")
    assert pressed.status == 200
    [action] = await bot.fake.wait_for(lambda: bot.seen["actions"])
    assert action["actions"][0] | {"action_ts": None} == {
        "action_id": "answer",
        "block_id": "buttons",
        "type": "button",
        "value": "q-1",
        "text": {"type": "plain_text", "text": "Answer"},
        "action_ts": None,
    }
    assert action["container"]["message_ts"] == question["ts"]
    [modal] = await bot.fake.wait_for(lambda: bot.fake.modals(alice))
    assert flatten_text(modal) == "Your answer\nAnswer"

    empty = await bot.slack.view_submission(alice, "answer_modal", {"answer_block": {"answer_input": "  "}})
    assert empty.json() == {"response_action": "errors", "errors": {"answer_block": "Write something first"}}
    assert bot.fake.modals(alice) == [modal]  # still open, showing the error

    sent = await bot.slack.view_submission(alice, "answer_modal", {"answer_block": {"answer_input": "env + fn"}})
    assert sent.status == 200 and sent.body == ""
    [view] = await bot.fake.wait_for(lambda: bot.seen["views"])
    assert view["private_metadata"] == question["ts"]
    assert view["state"]["values"] == {
        "answer_block": {"answer_input": {"type": "plain_text_input", "value": "env + fn"}}
    }
    assert bot.fake.modals(alice) == []  # a bare ack closes it


async def test_trigger_ids_are_single_use(bot: Bot) -> None:
    alice = bot.fake.add_user("alice")
    trigger = bot.fake.issue_trigger_id(alice)
    await bot.app.client.views_open(trigger_id=trigger, view=ANSWER_MODAL)
    with pytest.raises(SlackApiError) as err:
        await bot.app.client.views_open(trigger_id=trigger, view=ANSWER_MODAL)
    assert err.value.response["error"] == "exchanged_trigger_id"


async def test_app_home_is_published_and_its_select_reports_the_option(bot: Bot) -> None:
    alice = bot.fake.add_user("alice")
    picked: list[dict[str, Any]] = []
    topics = {
        "type": "static_select",
        "action_id": "topic",
        "options": [{"text": {"type": "plain_text", "text": "Python"}, "value": "py"}],
    }

    @bot.app.event("app_home_opened")
    async def on_home(event: dict[str, Any], client: AsyncWebClient) -> None:
        blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "Pick a topic"}, "accessory": topics}]
        await client.views_publish(user_id=event["user"], view={"type": "home", "blocks": blocks})

    @bot.app.action("topic")
    async def on_topic(ack: Any, body: dict[str, Any]) -> None:
        await ack()
        picked.append(body)

    await bot.slack.event(bot.slack.app_home_opened(alice))
    home = await bot.fake.wait_for(lambda: bot.fake.home(alice))
    assert flatten_text(home) == "Pick a topic"

    result = await bot.slack.block_action(alice, None, "topic", "py")
    assert result.status == 200 and result.response_url_key is None  # App Home actions have no response_url
    [body] = await bot.fake.wait_for(lambda: picked)
    assert body["container"] == {"type": "view", "view_id": home["id"]}
    assert body["actions"][0]["selected_option"]["value"] == "py"


@pytest.mark.xfail(strict=True, reason="bolt 1.30 reads any form body containing 'payload' as interactivity")
async def test_slash_command_text_mentioning_payload(bot: Bot) -> None:
    general = bot.fake.add_channel("general")
    alice = bot.fake.add_user("alice")
    result = await bot.slack.slash("/quiz", "what is a payload?", alice, general)
    assert result.status == 200  # bolt answers 404 "unhandled request": the command never reaches the listener


# ------------------------------------------------------------------ the Web API alone


@pytest.fixture
async def web(fake_slack: FakeSlackWebAPI) -> AsyncWebClient:
    return AsyncWebClient(token=fake_slack.bot_token, base_url=fake_slack.api_url)


async def error_of(call: Any) -> str:
    with pytest.raises(SlackApiError) as err:
        await call
    return str(err.value.response["error"])


async def test_channel_failures(fake_slack: FakeSlackWebAPI, web: AsyncWebClient) -> None:
    kicked = fake_slack.add_channel("kicked")
    old = fake_slack.add_channel("old")
    fake_slack.remove_bot_from(kicked)
    fake_slack.archive(old)

    assert await error_of(web.chat_postMessage(channel=kicked, text="hi")) == "not_in_channel"
    assert await error_of(web.chat_postMessage(channel=old, text="hi")) == "is_archived"
    assert await error_of(web.chat_postMessage(channel="C404", text="hi")) == "channel_not_found"
    await web.conversations_join(channel=kicked)
    assert (await web.chat_postMessage(channel=kicked, text="back")).get("ok")
    wrong = AsyncWebClient(token="xoxb-wrong", base_url=fake_slack.api_url)
    assert await error_of(wrong.auth_test()) == "invalid_auth"


async def test_fail_next_error_and_server_error(fake_slack: FakeSlackWebAPI, web: AsyncWebClient) -> None:
    general = fake_slack.add_channel("general")
    fake_slack.fail_next("chat.postMessage", error="fatal_error")
    fake_slack.fail_next("chat.postMessage", status=500, times=2)

    assert await error_of(web.chat_postMessage(channel=general, text="a")) == "fatal_error"
    with pytest.raises(SlackApiError) as err:
        await web.chat_postMessage(channel=general, text="b")
    assert err.value.response.status_code == 500
    assert await error_of(web.chat_postMessage(channel=general, text="c")) == "internal_error"
    assert (await web.chat_postMessage(channel=general, text="d"))["ok"]
    assert [m["text"] for m in fake_slack.messages(general)] == ["d"]


async def test_messages_threads_edits_reactions_and_permalinks(
    fake_slack: FakeSlackWebAPI, web: AsyncWebClient
) -> None:
    general = fake_slack.add_channel("general")
    parent = await web.chat_postMessage(channel=general, text="Question")
    assert parent["ts"] == "1700000000.000100" and parent["channel"] == general
    await web.chat_postMessage(channel=general, text="Hint", thread_ts=parent["ts"])
    await web.chat_update(channel=general, ts=parent["ts"], text="Question (edited)")
    await web.reactions_add(channel=general, name="white_check_mark", timestamp=parent["ts"])
    link = await web.chat_getPermalink(channel=general, message_ts=parent["ts"])

    assert [m["text"] for m in fake_slack.messages(general)] == ["Question (edited)"]
    assert [m["text"] for m in fake_slack.thread(general, parent["ts"])] == ["Question (edited)", "Hint"]
    assert fake_slack.messages(general)[0]["reactions"] == [
        {"name": "white_check_mark", "users": [fake_slack.bot_user_id], "count": 1}
    ]
    assert link["permalink"].endswith(f"/archives/{general}/p1700000000000100")
    await web.chat_delete(channel=general, ts=parent["ts"])
    assert fake_slack.messages(general) == []
    assert await error_of(web.chat_update(channel=general, ts=parent["ts"], text="x")) == "message_not_found"


async def test_users_home_ephemerals_and_block_limits(fake_slack: FakeSlackWebAPI, web: AsyncWebClient) -> None:
    general = fake_slack.add_channel("general")
    boss = fake_slack.add_user("boss", owner=True, tz="America/New_York")
    info = (await web.users_info(user=boss))["user"]
    assert (info["is_admin"], info["is_owner"], info["is_bot"], info["tz"]) == (True, True, False, "America/New_York")
    assert (await web.conversations_info(channel=general))["channel"]["name"] == "general"

    home = {"type": "home", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "Your streak: 3"}}]}
    await web.views_publish(user_id=boss, view=home)
    assert flatten_text(fake_slack.home(boss)) == "Your streak: 3"

    await web.chat_postEphemeral(channel=general, user=boss, text="Only you")
    assert [m["text"] for m in fake_slack.ephemerals(boss)] == ["Only you"]

    too_long = [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}]
    assert await error_of(web.chat_postMessage(channel=general, text="t", blocks=too_long)) == "invalid_blocks"


async def test_history_and_replies_list_metadata_only_when_asked(
    fake_slack: FakeSlackWebAPI, web: AsyncWebClient
) -> None:
    general = fake_slack.add_channel("general")
    meta = {"event_type": "interview_bot_post", "event_payload": {"key": "p1"}}
    parent = await web.chat_postMessage(channel=general, text="question", metadata=meta)
    await web.chat_postMessage(channel=general, text="reply", thread_ts=parent["ts"], metadata=meta)
    history = await web.conversations_history(channel=general, include_all_metadata=True)
    assert [m["text"] for m in history["messages"]] == ["question"]  # replies stay in their thread
    assert history["messages"][0]["metadata"] == meta
    plain = await web.conversations_history(channel=general)
    assert "metadata" not in plain["messages"][0]
    replies = await web.conversations_replies(channel=general, ts=parent["ts"], include_all_metadata=True)
    assert [m["text"] for m in replies["messages"]] == ["question", "reply"]
    assert await error_of(web.conversations_replies(channel=general, ts="1.000001")) == "thread_not_found"
    kicked = fake_slack.add_channel("kicked")
    fake_slack.remove_bot_from(kicked)
    assert await error_of(web.conversations_history(channel=kicked)) == "not_in_channel"


async def test_menus_hold_at_most_100_options_and_offer_only_their_own(
    fake_slack: FakeSlackWebAPI, web: AsyncWebClient
) -> None:
    general = fake_slack.add_channel("general")
    alice = fake_slack.add_user("alice")

    def menu(n: int) -> list[dict[str, Any]]:
        options = [{"text": {"type": "plain_text", "text": f"answer {i}"}, "value": str(i)} for i in range(n)]
        return [{"type": "actions", "elements": [{"type": "static_select", "action_id": "pick", "options": options}]}]

    assert await error_of(web.chat_postMessage(channel=general, text="x", blocks=menu(101))) == "invalid_blocks"
    await web.chat_postMessage(channel=general, text="x", blocks=menu(100))
    async with SlackClient("http://127.0.0.1:9/unused", SIGNING_SECRET, fake_slack) as slack:
        with pytest.raises(AssertionError, match="offers no option '100'"):
            await slack.block_action(alice, general, "pick", "100")
