"""Plays Slack's side of the HTTP conversation: signed requests to the bot's ``/slack/events`` endpoint.

Each request is signed exactly as Slack signs it (see ``slack_sdk.signature.SignatureVerifier``):
``X-Slack-Request-Timestamp: <unix seconds>`` and ``X-Slack-Signature: v0=<hex HMAC-SHA256(signing_secret,
"v0:<timestamp>:<raw body>")>``, so the bot's real bolt ``AsyncRequestVerification`` middleware checks it.
Payloads follow Slack's documented shapes: a JSON ``event_callback`` envelope for the Events API, a form-encoded
body for slash commands, and a form body with one ``payload`` JSON field for interactivity.

The client shares a :class:`~tests.fake_slack.server.FakeSlackWebAPI` with the bot: response_urls and
trigger_ids point at it, user messages land in its world, and modal stacks follow the bot's view acks.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

from tests.fake_slack.server import FakeSlackWebAPI

__all__ = ["SlackClient", "SlackHttpResult", "serve_web_app", "sign"]

JsonDict = dict[str, Any]
# Slack (and slack_sdk's verifier) reject requests whose timestamp is more than five minutes off.
STALE_AFTER_SECONDS = 5 * 60


def sign(signing_secret: str, timestamp: str, body: str) -> str:
    """Slack's v0 request signature; mirrors ``SignatureVerifier.generate_signature``."""
    base = f"v0:{timestamp}:{body}".encode()
    return "v0=" + hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class SlackHttpResult:
    """What the bot answered to one request, plus what the test needs to follow up on it.

    ``response_url_key`` names the response_url sent with a slash command or action: read what the bot
    posted there with ``fake.responses(key)``. ``sent`` is the payload as sent (before encoding).
    """

    status: int
    body: str
    headers: Mapping[str, str]
    sent: JsonDict
    response_url_key: str | None = None
    trigger_id: str | None = None
    event_id: str | None = None

    def json(self) -> Any:
        """The body parsed as JSON (bolt answers acks with a body, e.g. response_action, as JSON)."""
        return json.loads(self.body) if self.body else None


@dataclass
class SlackClient:
    """Sends genuinely signed Slack requests to a bot's HTTP endpoint.

    ``url`` is the full endpoint, e.g. ``http://127.0.0.1:PORT/slack/events``. Set ``bad_signature`` or
    ``stale_timestamp`` to send requests a real bot must reject with 401.
    """

    url: str
    signing_secret: str
    fake: FakeSlackWebAPI
    verification_token: str = "fake-verification-token"
    bad_signature: bool = False
    stale_timestamp: bool = False
    _session: aiohttp.ClientSession | None = field(default=None, init=False, repr=False)
    _seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1), init=False, repr=False)

    # ------------------------------------------------------------------ lifecycle

    async def close(self) -> None:
        """Close the HTTP session (opened lazily on the first request)."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> SlackClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ transport

    def _signed_headers(self, body: str) -> dict[str, str]:
        now = int(time.time())
        timestamp = str(now - STALE_AFTER_SECONDS - 60 if self.stale_timestamp else now)
        secret = self.signing_secret + "-wrong" if self.bad_signature else self.signing_secret
        return {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": sign(secret, timestamp, body)}

    async def _post(
        self, body: str, content_type: str, sent: JsonDict, extra_headers: Mapping[str, str] | None = None, **info: Any
    ) -> SlackHttpResult:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        headers = {"Content-Type": content_type, "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)"}
        headers.update(self._signed_headers(body))
        headers.update(extra_headers or {})
        async with self._session.post(self.url, data=body.encode(), headers=headers) as resp:
            text = await resp.text()
            return SlackHttpResult(status=resp.status, body=text, headers=dict(resp.headers), sent=sent, **info)

    async def _post_json(
        self, payload: JsonDict, extra_headers: Mapping[str, str] | None = None, **info: Any
    ) -> SlackHttpResult:
        return await self._post(json.dumps(payload), "application/json", payload, extra_headers, **info)

    async def _post_form(self, form: Mapping[str, str], sent: JsonDict, **info: Any) -> SlackHttpResult:
        return await self._post(urlencode(form), "application/x-www-form-urlencoded", sent, **info)

    def _key(self, kind: str) -> str:
        return f"{kind}-{next(self._seq)}"

    def _user_obj(self, user: str) -> JsonDict:
        name = self.fake.user_name(user)
        return {"id": user, "username": name, "name": name, "team_id": self.fake.team_id}

    def _team_obj(self) -> JsonDict:
        return {"id": self.fake.team_id, "domain": self.fake.team_domain}

    # ------------------------------------------------------------------ Events API

    async def url_verification(self) -> SlackHttpResult:
        """The handshake Slack sends when the Request URL is saved; the bot must echo ``challenge``."""
        payload = {"token": self.verification_token, "challenge": secrets.token_urlsafe(24), "type": "url_verification"}
        return await self._post_json(payload)

    async def event(
        self,
        event: Mapping[str, Any],
        *,
        event_id: str | None = None,
        retry_num: int | None = None,
        retry_reason: str = "http_timeout",
    ) -> SlackHttpResult:
        """Deliver one event in an ``event_callback`` envelope.

        Pass the ``event_id`` of an earlier delivery and ``retry_num`` (1, 2, 3) to replay it the way Slack
        retries after a slow or failed answer: same envelope, plus ``X-Slack-Retry-Num``/``X-Slack-Retry-Reason``.
        Message events are first applied to the fake's world, because in Slack the message exists before the
        bot is told about it; a retry is not applied again (it may even describe a message deleted since).
        """
        if retry_num is None:
            self.fake.apply_user_event(event)
        event_id = event_id or f"Ev{secrets.token_hex(5).upper()}"
        envelope = {
            "token": self.verification_token,
            "team_id": self.fake.team_id,
            "context_team_id": self.fake.team_id,
            "context_enterprise_id": None,
            "api_app_id": self.fake.app_id,
            "event": dict(event),
            "type": "event_callback",
            "event_id": event_id,
            "event_time": int(time.time()),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": self.fake.team_id,
                    "user_id": self.fake.bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
            "event_context": f"4-{secrets.token_urlsafe(30)}",
        }
        headers = {}
        if retry_num is not None:
            headers = {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": retry_reason}
        return await self._post_json(envelope, headers, event_id=event_id)

    # ------------------------------------------------------------------ event builders (pure apart from the ts)

    def message(
        self, channel: str, user: str, text: str, thread_ts: str | None = None, *, ts: str | None = None
    ) -> JsonDict:
        """A person's ``message`` event as the Events API delivers it, with the rich_text block Slack adds."""
        ts = ts or self.fake.new_ts()
        event: JsonDict = {
            "type": "message",
            "channel": channel,
            "user": user,
            "text": text,
            "ts": ts,
            "event_ts": ts,
            "team": self.fake.team_id,
            "client_msg_id": str(uuid.uuid4()),
            "blocks": [
                {
                    "type": "rich_text",
                    "block_id": secrets.token_hex(2),
                    "elements": [{"type": "rich_text_section", "elements": [{"type": "text", "text": text}]}],
                }
            ],
            "channel_type": self.fake.channel_type(channel),
        }
        if thread_ts is not None:
            event["thread_ts"] = thread_ts
            parent = self.fake.message(channel, thread_ts)
            if parent is not None and parent.get("user"):
                event["parent_user_id"] = parent["user"]
        return event

    def message_changed(self, channel: str, ts: str, text: str, *, user: str | None = None) -> JsonDict:
        """An edit of the message at ``ts``: subtype ``message_changed`` with ``message`` and ``previous_message``.

        The previous version comes from the fake's world; ``user`` is needed only if it never saw the message.
        """
        old = self.fake.message(channel, ts)
        if old is None:
            if user is None:
                raise ValueError(f"no message {ts} in {channel}; pass user= to build the edit anyway")
            old = {"type": "message", "user": user, "text": "", "ts": ts, "team": self.fake.team_id}
        previous = {k: v for k, v in old.items() if k not in {"channel", "reactions"}}
        edit_ts = self.fake.new_ts()
        new = dict(previous)
        new.update(
            {
                "text": text,
                "edited": {"user": previous.get("user"), "ts": edit_ts},
                "blocks": [
                    {
                        "type": "rich_text",
                        "block_id": secrets.token_hex(2),
                        "elements": [{"type": "rich_text_section", "elements": [{"type": "text", "text": text}]}],
                    }
                ],
            }
        )
        return {
            "type": "message",
            "subtype": "message_changed",
            "message": new,
            "previous_message": previous,
            "channel": channel,
            "hidden": True,
            "ts": edit_ts,
            "event_ts": edit_ts,
            "channel_type": self.fake.channel_type(channel),
        }

    def message_deleted(self, channel: str, ts: str) -> JsonDict:
        """A deletion of the message at ``ts``: subtype ``message_deleted`` with ``deleted_ts``."""
        event_ts = self.fake.new_ts()
        event: JsonDict = {
            "type": "message",
            "subtype": "message_deleted",
            "hidden": True,
            "deleted_ts": ts,
            "channel": channel,
            "ts": event_ts,
            "event_ts": event_ts,
            "channel_type": self.fake.channel_type(channel),
        }
        old = self.fake.message(channel, ts)
        if old is not None:
            event["previous_message"] = {k: v for k, v in old.items() if k not in {"channel"}}
        return event

    def app_home_opened(self, user: str, *, tab: str = "home") -> JsonDict:
        """``app_home_opened``; carries the current Home view when the bot has published one."""
        event_ts = self.fake.new_ts()
        event: JsonDict = {
            "type": "app_home_opened",
            "user": user,
            "channel": self.fake.dm_channel(user),
            "tab": tab,
            "event_ts": event_ts,
        }
        home = self.fake.home(user)
        if home is not None:
            event["view"] = home
        return event

    # ------------------------------------------------------------------ slash commands

    async def slash(self, command: str, text: str, user: str, channel: str) -> SlackHttpResult:
        """A slash command, form-encoded with the fields Slack sends; the ack's body is what Slack shows."""
        key = self._key("slash")
        trigger_id = self.fake.issue_trigger_id(user)
        form = {
            "token": self.verification_token,
            "team_id": self.fake.team_id,
            "team_domain": self.fake.team_domain,
            "channel_id": channel,
            "channel_name": self.fake.channel_name(channel),
            "user_id": user,
            "user_name": self.fake.user_name(user),
            "command": command,
            "text": text,
            "api_app_id": self.fake.app_id,
            "is_enterprise_install": "false",
            "response_url": self.fake.response_url_for(key, channel=channel, user=user),
            "trigger_id": trigger_id,
        }
        return await self._post_form(form, dict(form), response_url_key=key, trigger_id=trigger_id)

    # ------------------------------------------------------------------ interactivity

    async def _post_payload(self, payload: JsonDict, **info: Any) -> SlackHttpResult:
        return await self._post_form({"payload": json.dumps(payload)}, payload, **info)

    def _locate_action(self, user: str, channel: str | None, action_id: str, message_ts: str | None) -> tuple[str, Any]:
        """Find where the pressed element lives: ("message", msg), ("ephemeral", msg), ("view", view) or ("", None)."""
        if channel is not None:
            if message_ts is not None:
                msg = self.fake.message(channel, message_ts)
                if msg is not None:
                    return "message", msg
                for m in self.fake.ephemerals(user):
                    if m.get("ts") == message_ts:
                        return "ephemeral", m
                return "", None
            for m in reversed(self.fake.messages(channel, include_replies=True)):
                if _find_element(m.get("blocks"), action_id) is not None:
                    return "message", m
            for m in reversed(self.fake.ephemerals(user)):
                if m.get("channel") == channel and _find_element(m.get("blocks"), action_id) is not None:
                    return "ephemeral", m
            return "", None
        for view in reversed(self.fake.modals(user)):
            if _find_element(view.get("blocks"), action_id) is not None:
                return "view", view
        home = self.fake.home(user)
        if home is not None:
            return "view", home
        return "", None

    async def block_action(
        self,
        user: str,
        channel: str | None,
        action_id: str,
        value: str | None = None,
        *,
        message_ts: str | None = None,
        container: JsonDict | None = None,
        block_id: str | None = None,
    ) -> SlackHttpResult:
        """A ``block_actions`` interaction: a person pressed a button (or picked an option) with ``action_id``.

        With ``channel`` it is an action on a message: the message at ``message_ts``, or else the newest message
        (or ephemeral) in the channel whose blocks hold ``action_id``; it gets a response_url. With
        ``channel=None`` it is an action in the user's open modal or App Home, which has no response_url.
        The element's type and block_id are read from the blocks when found, so selects get ``selected_option``.
        """
        where, source = self._locate_action(user, channel, action_id, message_ts)
        found = _find_element(source.get("blocks") if source else None, action_id)
        element_block_id, element = found if found is not None else (None, {"type": "button"})
        block_id = block_id or element_block_id or secrets.token_hex(3)
        trigger_id = self.fake.issue_trigger_id(user)
        action = _action_payload(element, action_id, block_id, value)

        payload: JsonDict = {
            "type": "block_actions",
            "user": self._user_obj(user),
            "api_app_id": self.fake.app_id,
            "token": self.verification_token,
            "trigger_id": trigger_id,
            "team": self._team_obj(),
            "enterprise": None,
            "is_enterprise_install": False,
            "state": {"values": {}},
            "actions": [action],
        }
        key: str | None = None
        if channel is not None:
            ts = source["ts"] if source else (message_ts or self.fake.new_ts())
            key = self._key("action")
            payload["container"] = container or {
                "type": "message",
                "message_ts": ts,
                "channel_id": channel,
                "is_ephemeral": where == "ephemeral",
            }
            payload["channel"] = {"id": channel, "name": self.fake.channel_name(channel)}
            if where == "message":
                payload["message"] = {k: v for k, v in source.items() if k != "channel"}
            payload["response_url"] = self.fake.response_url_for(
                key, channel=channel, user=user, message_ts=ts if where == "message" else None
            )
        else:
            view = source if where == "view" else None
            payload["container"] = container or {"type": "view", "view_id": view["id"] if view else None}
            if view is not None:
                payload["view"] = view
        return await self._post_payload(payload, response_url_key=key, trigger_id=trigger_id)

    async def view_submission(
        self,
        user: str,
        callback_id: str,
        values: Mapping[str, Mapping[str, Any]],
        private_metadata: str | None = None,
        *,
        view_id: str | None = None,
    ) -> SlackHttpResult:
        """A ``view_submission``: the person pressed Submit on the modal with ``callback_id``.

        ``values`` is Slack's ``view.state.values`` shape, ``{block_id: {action_id: {...}}}``; a bare string
        leaf is expanded to ``{"type": <the input's element type>, "value": ...}`` (or ``selected_option`` for
        selects). The modal the bot opened supplies id, blocks and ``private_metadata`` (unless given). After
        the ack, the fake's modal stack follows ``response_action`` (none/clear close, update, push, errors).
        """
        stack = self.fake.modals(user)
        opened = next(
            (
                v
                for v in reversed(stack)
                if (view_id and v["id"] == view_id) or (not view_id and v["callback_id"] == callback_id)
            ),
            None,
        )
        view: JsonDict = (
            dict(opened)
            if opened
            else {
                "id": view_id or f"V{secrets.token_hex(5).upper()}",
                "team_id": self.fake.team_id,
                "type": "modal",
                "blocks": [],
                "private_metadata": "",
                "callback_id": callback_id,
                "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
                "title": {"type": "plain_text", "text": "Modal"},
                "previous_view_id": None,
                "app_id": self.fake.app_id,
                "external_id": "",
                "bot_id": self.fake.bot_id,
            }
        )
        view["callback_id"] = callback_id
        if private_metadata is not None:
            view["private_metadata"] = private_metadata
        view["state"] = {"values": _state_values(view.get("blocks"), values)}
        payload: JsonDict = {
            "type": "view_submission",
            "team": self._team_obj(),
            "user": self._user_obj(user),
            "api_app_id": self.fake.app_id,
            "token": self.verification_token,
            "trigger_id": self.fake.issue_trigger_id(user),
            "view": view,
            "response_urls": [],
            "is_enterprise_install": False,
            "enterprise": None,
        }
        result = await self._post_payload(payload, trigger_id=payload["trigger_id"])
        if opened is not None and result.status == 200:
            self._follow_view_ack(user, opened["id"], result)
        return result

    def _follow_view_ack(self, user: str, view_id: str, result: SlackHttpResult) -> None:
        """Apply the bot's ack to the modal stack the way Slack's client would."""
        try:
            ack = result.json()
        except json.JSONDecodeError:
            ack = None
        action = ack.get("response_action") if isinstance(ack, dict) else None
        if action == "errors":
            return
        if action == "update" and isinstance(ack.get("view"), dict):
            self.fake.replace_view(view_id, ack["view"])
        elif action == "push" and isinstance(ack.get("view"), dict):
            self.fake.push_view(user, ack["view"])
        elif action == "clear":
            self.fake.close_view(user, clear=True)
        else:
            self.fake.close_view(user, view_id)


# ----------------------------------------------------------------------------------------------------------------


def _iter_elements(block: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    elements = list(block.get("elements") or []) if block.get("type") == "actions" else []
    for key in ("accessory", "element"):
        if isinstance(block.get(key), Mapping):
            elements.append(block[key])
    return [e for e in elements if isinstance(e, Mapping)]


def _find_element(blocks: Any, action_id: str) -> tuple[str | None, Mapping[str, Any]] | None:
    """(block_id, element) of the interactive element with ``action_id`` in a list of blocks."""
    for block in blocks or []:
        if not isinstance(block, Mapping):
            continue
        for el in _iter_elements(block):
            if el.get("action_id") == action_id:
                return block.get("block_id"), el
    return None


def _option(element: Mapping[str, Any], value: Any) -> JsonDict:
    options = list(element.get("options") or [])
    for group in element.get("option_groups") or []:
        options += group.get("options") or []
    for opt in options:
        if opt.get("value") == value:
            return dict(opt)
    if element.get("type") == "static_select":  # a member can only pick what the menu offers
        raise AssertionError(f"menu {element.get('action_id')!r} offers no option {value!r}")
    return {"text": {"type": "plain_text", "text": str(value)}, "value": value}


_SELECTS = {"static_select", "external_select", "radio_buttons", "overflow"}


def _action_payload(element: Mapping[str, Any], action_id: str, block_id: str, value: Any) -> JsonDict:
    """One entry of ``actions[]`` for the element type, as Slack reports it."""
    kind = element.get("type", "button")
    action: JsonDict = {"action_id": action_id, "block_id": block_id, "type": kind, "action_ts": f"{time.time():.6f}"}
    if kind == "button":
        action["value"] = value if value is not None else element.get("value")
        if "text" in element:
            action["text"] = element["text"]
        if "style" in element:
            action["style"] = element["style"]
    elif kind in _SELECTS:
        action["selected_option"] = _option(element, value)
    elif kind == "checkboxes":
        values = value if isinstance(value, list) else [value]
        action["selected_options"] = [_option(element, v) for v in values]
    elif kind == "users_select":
        action["selected_user"] = value
    elif kind == "conversations_select":
        action["selected_conversation"] = value
    elif kind == "channels_select":
        action["selected_channel"] = value
    else:
        action["value"] = value
    return action


def _state_values(blocks: Any, values: Mapping[str, Mapping[str, Any]]) -> JsonDict:
    """Expand shorthand leaves into Slack's ``view.state.values`` entries, typed by the modal's input elements."""
    out: JsonDict = {}
    for block_id, actions in values.items():
        out[block_id] = {}
        for action_id, leaf in actions.items():
            if isinstance(leaf, Mapping):
                out[block_id][action_id] = dict(leaf)
                continue
            found = _find_element(blocks, action_id)
            element = found[1] if found is not None else {"type": "plain_text_input"}
            kind = element.get("type", "plain_text_input")
            if kind in {"static_select", "external_select", "radio_buttons"}:
                out[block_id][action_id] = {"type": kind, "selected_option": _option(element, leaf)}
            elif kind == "checkboxes":
                leaves = leaf if isinstance(leaf, list) else [leaf]
                out[block_id][action_id] = {"type": kind, "selected_options": [_option(element, v) for v in leaves]}
            elif kind == "users_select":
                out[block_id][action_id] = {"type": kind, "selected_user": leaf}
            elif kind == "datepicker":
                out[block_id][action_id] = {"type": kind, "selected_date": leaf}
            elif kind == "timepicker":
                out[block_id][action_id] = {"type": kind, "selected_time": leaf}
            else:
                out[block_id][action_id] = {"type": kind, "value": leaf}
    return out


@asynccontextmanager
async def serve_web_app(app: web.Application) -> AsyncIterator[str]:
    """Serve an aiohttp app (e.g. bolt's ``AsyncApp.web_app()``) on 127.0.0.1, a free port; yields the base URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()
