"""Anonymous visitors of public bots (the web widget): who they are, and which pages may embed a bot.

A visitor is a random id the server signs into a token the widget keeps in the page's
localStorage, so it is scoped to one browser and one site; it names one bot. A visitor owns the
chats made with that token and nothing else: not another visitor's, not the bot owner's.

Pages: the bot's `allowed_origins`, plus Bytchat's own origin (its /demo/ page). Browsers always
send `Origin` on cross-origin requests and WebSocket handshakes and scripts cannot forge it, which
is what keeps other sites out; the server never relies on cookies here, so echoing an allowed
origin in CORS headers exposes nothing ambient.
"""

from __future__ import annotations

import dataclasses
import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core import signing
from django.utils.translation import gettext as _

from bots.models import Bot
from bots.origins import origin_normalize
from chats.runs.log import RunEvent
from core.errors import DomainError

SALT = "bytchat.chats.visitor"


@dataclass(frozen=True, slots=True)
class Visitor:
    id: uuid.UUID
    bot_id: uuid.UUID
    # Which of the bot's public keys the token was issued under: a new key retires old tokens.
    key_digest: str


def key_digest(public_key: str | None) -> str:
    return hashlib.sha256((public_key or "").encode()).hexdigest()[:16]


def visitor_new(bot: Bot) -> Visitor:
    return Visitor(id=uuid.uuid4(), bot_id=bot.pk, key_digest=key_digest(bot.public_key))


def visitor_token_issue(visitor: Visitor) -> str:
    return signing.dumps({"v": visitor.id.hex, "b": visitor.bot_id.hex, "k": visitor.key_digest}, salt=SALT)


def visitor_from_token(token: object, *, bot: Bot | None = None) -> Visitor | None:
    """The visitor a token names, if the server signed it within WIDGET_VISITOR_DAYS (and, with
    `bot`, for that bot under its current key); else None."""
    if not isinstance(token, str) or not token or len(token) > 500:
        return None
    try:
        payload = signing.loads(token, salt=SALT, max_age=settings.WIDGET_VISITOR_DAYS * 86400)
        visitor = Visitor(id=uuid.UUID(hex=payload["v"]), bot_id=uuid.UUID(hex=payload["b"]), key_digest=payload["k"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        return None
    if bot is not None and (visitor.bot_id != bot.pk or visitor.key_digest != key_digest(bot.public_key)):
        return None
    return visitor


def visitor_citations(citations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What a visitor is shown of an answer's sources: document names and pages, or web links; not
    the passages' text nor the documents' ids, which belong to the bot's owner."""
    shown = []
    for citation in citations:
        if citation.get("url"):
            shown.append({"url": citation["url"], "title": citation.get("title", "")})
        else:
            shown.append({"filename": citation.get("filename", ""), "page": citation.get("page")})
    return shown


def visitor_run_event(item: RunEvent) -> RunEvent:
    """A run's event as a visitor reads it: its citations as `visitor_citations` (the same event when
    it has none)."""
    if "citations" not in item.event.data:
        return item
    data = {**item.event.data, "citations": visitor_citations(item.event.data["citations"])}
    return RunEvent(item.seq, dataclasses.replace(item.event, data=data))


def bot_allows_page(bot: Bot, origin: str | None, *, own_origin: str) -> bool:
    """A page of this origin may use the bot: it is public and lists the origin, or it is Bytchat's own."""
    normalized = origin_normalize(origin)
    if not bot.public or normalized is None:
        return False
    if normalized == origin_normalize(own_origin):
        return True
    return normalized in {origin_normalize(allowed) for allowed in bot.allowed_origins}


def page_check(bot: Bot, origin: str | None, *, own_origin: str, required: bool) -> str:
    """The calling page's origin, normalised, which the bot must allow (403 otherwise). Browsers
    always send it on cross-origin requests; without one, only `required=False` calls pass ("")."""
    if origin is None and not required:
        return ""
    if not bot_allows_page(bot, origin, own_origin=own_origin):
        raise DomainError(
            _("This page (%(origin)s) may not use this chat widget.") % {"origin": (origin or "no origin")[:100]},
            code="origin_not_allowed",
            status_code=403,
        )
    return origin_normalize(origin) or ""


def is_own_page(origin: str, own_origin: str) -> bool:
    return bool(origin) and origin == origin_normalize(own_origin)
