"""The slack-bolt app: Slack requests in, core replies out.

Every listener acknowledges first (Slack's 3-second deadline) and does the work after. Events Slack
redelivers (X-Slack-Retry-Num) are recognised by event_id and processed once, in any process.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.request.async_internals import build_async_context
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.platform import send_image_privately, share_image
from adapters.slack.render import to_blocks, to_message, unescape
from bot.events import (
    Actor,
    ButtonPressed,
    Command,
    FormSubmitted,
    MessageDeleted,
    MessageEdited,
    MessagePosted,
    Place,
    TextCommand,
)
from bot.render import OpenForm, React, Reply, Response
from bot.runtime import Runtime

log = logging.getLogger(__name__)

PLATFORM = "slack"
REACTIONS = {"recorded": "white_check_mark", "updated": "pencil2", "refused": "no_entry_sign"}
CUSTOM_ID = re.compile(r"^(?:vote|practice|answer|forget):")
ADMIN_CACHE_SECONDS = 300


class Identities:
    """Who is an admin, from users.info (workspace admins and owners), cached for a few minutes."""

    def __init__(self, admins: list[str]) -> None:
        self.admins = set(admins)
        self._cache: dict[tuple[str, str], tuple[float, bool, str]] = {}

    async def actor(self, client: AsyncWebClient, team: str, user: str, name: str | None = None) -> Actor:
        key = (team, user)
        hit = self._cache.get(key)
        if hit is None or hit[0] < time.monotonic():
            admin, display = False, name or user
            try:
                info = (await client.users_info(user=user))["user"]
                admin = bool(info.get("is_admin") or info.get("is_owner") or info.get("is_primary_owner"))
                profile = info.get("profile") or {}
                display = profile.get("display_name") or info.get("real_name") or info.get("name") or display
            except SlackApiError as exc:  # treat as a member: refusing admin rights is the safe side
                log.warning("users.info failed for %s: %s", user, exc.response.get("error"))
            hit = (time.monotonic() + ADMIN_CACHE_SECONDS, admin, display)
            self._cache[key] = hit
        return Actor(PLATFORM, team, user, hit[2], is_admin=hit[1] or user in self.admins)


def _team(body: dict[str, Any]) -> str:
    return str(body.get("team_id") or (body.get("team") or {}).get("id") or (body.get("user") or {}).get("team_id"))


def build_app(
    runtime: Runtime,
    *,
    signing_secret: str,
    client: AsyncWebClient,
    admins: list[str] | None = None,
    oauth_settings: Any = None,
    installation_store: Any = None,
) -> AsyncApp:
    # Every listener is an ack function plus a "lazy" one that does the work. With process_before_response,
    # bolt runs the ack function inline and answers Slack the moment it returns, then starts the lazy work as
    # a task. The default mode instead runs the whole listener as a task and polls every 10 ms for its ack:
    # ten milliseconds added to every ack, and, with many requests waiting, thousands of wake-ups a second
    # taken from the work itself.
    app = AsyncApp(
        signing_secret=signing_secret,
        client=client,
        oauth_settings=oauth_settings,
        installation_store=installation_store,
        process_before_response=True,
    )
    core = runtime.core
    ids = Identities(admins or [])

    async def deliver(
        responses: Sequence[Response],
        client: AsyncWebClient,
        user: str,
        respond: Callable[..., Awaitable[Any]] | None,
        *,
        channel: str | None = None,
        thread: str | None = None,
        trigger_id: str | None = None,
        react_to: tuple[str, str] | None = None,
    ) -> None:
        for r in responses:
            if isinstance(r, Reply):
                payload = to_message(r.message)
                if respond is not None:
                    kind = "ephemeral" if r.ephemeral else "in_channel"
                    await respond(**payload, response_type=kind, replace_original=False)
                elif channel and r.ephemeral:
                    await client.chat_postEphemeral(channel=channel, user=user, thread_ts=thread, **payload)
                else:  # the App Home has no channel: a direct message from the app
                    await client.chat_postMessage(channel=user, **payload)
                image = r.message.image
                if image is not None:  # after the text, which stands alone if the upload fails
                    if r.ephemeral or not channel:
                        await send_image_privately(client, user, image)
                    else:
                        await share_image(client, image, channel, thread)
            elif isinstance(r, OpenForm) and trigger_id:
                meta = json.dumps({"channel": channel, "thread": thread})
                await client.views_open(trigger_id=trigger_id, view=modal(r, meta))
            elif isinstance(r, React) and react_to and r.emoji in REACTIONS:
                try:
                    await client.reactions_add(channel=react_to[0], timestamp=react_to[1], name=REACTIONS[r.emoji])
                except SlackApiError as exc:  # the answer is recorded either way
                    log.info("could not react: %s", exc.response.get("error"))

    async def just_ack(ack: Any) -> None:
        await ack()

    async def quiz(command: dict[str, Any], client: AsyncWebClient, respond: Any) -> None:
        team = str(command["team_id"])
        actor = await ids.actor(client, team, command["user_id"], command.get("user_name"))
        place = Place(PLATFORM, team, command["channel_id"], None, command.get("channel_name"))
        responses = await core.handle(TextCommand(actor, place, unescape(command.get("text") or "")))
        # The channel is only where a public reply's picture goes: the replies themselves go through respond.
        await deliver(responses, client, command["user_id"], respond, channel=command["channel_id"])

    async def on_message(event: dict[str, Any], body: dict[str, Any], client: AsyncWebClient) -> None:
        if body.get("event_id") and not await core.first_delivery(PLATFORM, str(body["event_id"])):
            return  # a redelivery of something we already handled
        team = _team(body)
        subtype = event.get("subtype")
        channel = event.get("channel", "")
        if subtype in (None, "thread_broadcast", "file_share"):
            thread = event.get("thread_ts")
            if not thread or thread == event.get("ts") or "user" not in event:
                return  # not a reply in a thread, or not from a person
            actor = await ids.actor(client, team, event["user"])
            actor = Actor(**{**actor.__dict__, "is_bot": bool(event.get("bot_id"))})
            place = Place(PLATFORM, team, channel, thread)
            responses = await core.handle(MessagePosted(actor, place, event["ts"], unescape(event.get("text") or "")))
            await deliver(responses, client, event["user"], None, react_to=(channel, event["ts"]))
        elif subtype == "message_changed":
            msg = event.get("message") or {}
            thread = msg.get("thread_ts")
            if not thread or thread == msg.get("ts") or "user" not in msg:
                return
            actor = await ids.actor(client, team, msg["user"])
            place = Place(PLATFORM, team, channel, thread)
            responses = await core.handle(MessageEdited(actor, place, msg["ts"], unescape(msg.get("text") or "")))
            await deliver(responses, client, msg["user"], None, react_to=(channel, msg["ts"]))
        elif subtype == "message_deleted":
            thread = (event.get("previous_message") or {}).get("thread_ts")
            if thread and event.get("deleted_ts"):
                await core.handle(MessageDeleted(Place(PLATFORM, team, channel, thread), event["deleted_ts"]))

    async def on_action(body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient, respond: Any) -> None:
        team = _team(body)
        user = body["user"]["id"]
        custom_id = str(action.get("action_id", ""))
        values: tuple[str, ...] = ()
        if action.get("type") == "static_select":
            custom_id = custom_id.rsplit(":m", 1)[0]  # drop the menu number render.py added
            values = (str(action["selected_option"]["value"]),)
        channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
        message = body.get("message") or {}
        thread = message.get("thread_ts") or (message.get("ts") if message.get("reply_count") else None)
        actor = await ids.actor(client, team, user)
        place = Place(PLATFORM, team, channel or "home", thread)
        responses = await core.handle(ButtonPressed(actor, place, custom_id, values))
        has_url = bool(body.get("response_url"))
        await deliver(
            responses,
            client,
            user,
            respond if has_url else None,
            channel=channel,
            thread=thread,
            trigger_id=body.get("trigger_id"),
        )

    def form_values(view: dict[str, Any]) -> dict[str, str]:
        return {
            action_id: str(element.get("value") or "")
            for block in view["state"]["values"].values()
            for action_id, element in block.items()
        }

    async def check_view(ack: Any, view: dict[str, Any]) -> None:
        # An empty form is refused in the modal itself (Slack shows the error under the field).
        if not any(v.strip() for v in form_values(view).values()):
            await ack(response_action="errors", errors={b: "Write something first" for b in view["state"]["values"]})
            return
        await ack()

    async def on_view(body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient) -> None:
        values = form_values(view)
        if not any(v.strip() for v in values.values()):
            return  # refused by check_view
        meta = json.loads(view.get("private_metadata") or "{}")
        team = _team(body)
        user = body["user"]["id"]
        actor = await ids.actor(client, team, user)
        place = Place(PLATFORM, team, meta.get("channel") or "home", meta.get("thread"))
        responses = await core.handle(FormSubmitted(actor, place, view["callback_id"], values))
        await deliver(responses, client, user, None, channel=meta.get("channel"), thread=meta.get("thread"))

    async def home(event: dict[str, Any], body: dict[str, Any], client: AsyncWebClient) -> None:
        if event.get("tab") != "home":
            return
        team = _team(body)
        actor = await ids.actor(client, team, event["user"])
        # No chart on the App Home: a view cannot carry an uploaded picture.
        stats = Command(actor, Place(PLATFORM, team, "home"), ("quiz", "stats"), {"chart": "no"})
        responses = await core.handle(stats)
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": {"type": "plain_text", "text": "interview-bot"}},
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": "A daily interview question in your channels, and private practice whenever you like.",
                },
            },
        ]
        for r in responses:
            if isinstance(r, Reply):
                blocks += to_blocks(r.message)
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "action_id": "practice:next:",
                        "text": {"type": "plain_text", "text": "Practise a question"},
                        "style": "primary",
                    }
                ],
            }
        )
        await client.views_publish(user_id=event["user"], view={"type": "home", "blocks": blocks})

    app.command("/quiz")(ack=just_ack, lazy=[quiz])
    app.event("message")(ack=just_ack, lazy=[on_message])
    app.action(CUSTOM_ID)(ack=just_ack, lazy=[on_action])
    app.view(CUSTOM_ID)(ack=check_view, lazy=[on_view])
    app.event("app_home_opened")(ack=just_ack, lazy=[home])
    return app


def modal(form: OpenForm, private_metadata: str) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": form.custom_id,
        "title": {"type": "plain_text", "text": form.title[:24]},
        "submit": {"type": "plain_text", "text": "Submit"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "private_metadata": private_metadata[:3000],
        "blocks": [
            {
                "type": "input",
                "block_id": f.custom_id,
                "label": {"type": "plain_text", "text": f.label[:2000]},
                "element": {
                    "type": "plain_text_input",
                    "action_id": f.custom_id,
                    "multiline": f.multiline,
                    "max_length": min(f.max_length, 3000),
                    **({"placeholder": {"type": "plain_text", "text": f.placeholder[:150]}} if f.placeholder else {}),
                },
            }
            for f in form.fields
        ],
    }


class _Request(AsyncBoltRequest):
    """slack-bolt 1.30 reads any form body that merely contains the word "payload" as an interactivity
    payload and loses the rest, so "/quiz practice payload" would vanish with a 404. Such a body is read as
    the plain form it is. The signature check uses the raw body, which stays untouched."""

    def __init__(self, *, body: str, query: Any, headers: Any, context: Any = None) -> None:
        super().__init__(body=body, query=query, headers=headers, context=context)
        if not self.body and body and not body.startswith("{"):
            form = dict(parse_qsl(body, keep_blank_values=True))
            if "payload" not in form:
                self.body = form
                self.context = build_async_context(AsyncBoltContext(context or {}), self.body)

    def to_copyable(self) -> _Request:
        return _Request(body=self.raw_body, query=self.query, headers=self.headers, context=self.context.to_copyable())


def web_app(app: AsyncApp, path: str = "/slack/events") -> web.Application:
    """The HTTP endpoint: Slack's events, commands and interactivity on one path, plus the OAuth pages."""

    async def endpoint(request: web.Request) -> web.Response:
        bolt_request = _Request(body=await request.text(), query=request.query_string, headers=request.headers)
        flow = app.oauth_flow
        if request.method == "GET" and flow is not None:
            # The install page and the OAuth callback (several workspaces); dispatch does not serve them.
            if request.path == flow.install_path:
                return await to_aiohttp_response(await flow.handle_installation(bolt_request))
            if request.path == flow.redirect_uri_path:
                return await to_aiohttp_response(await flow.handle_callback(bolt_request))
            raise web.HTTPNotFound()
        return await to_aiohttp_response(await app.async_dispatch(bolt_request))

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    web_application = web.Application()
    web_application.router.add_post(path, endpoint)
    if app.oauth_flow is not None:
        web_application.router.add_get(app.oauth_flow.install_path, endpoint)
        web_application.router.add_get(app.oauth_flow.redirect_uri_path, endpoint)
    web_application.router.add_get("/healthz", healthz)
    return web_application
