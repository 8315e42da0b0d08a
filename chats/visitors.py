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

import uuid
from dataclasses import dataclass

from django.conf import settings
from django.core import signing

from bots.models import Bot
from bots.origins import origin_normalize

SALT = "bytchat.chats.visitor"


@dataclass(frozen=True, slots=True)
class Visitor:
    id: uuid.UUID
    bot_id: uuid.UUID


def visitor_new(bot: Bot) -> Visitor:
    return Visitor(id=uuid.uuid4(), bot_id=bot.pk)


def visitor_token_issue(visitor: Visitor) -> str:
    return signing.dumps({"v": visitor.id.hex, "b": visitor.bot_id.hex}, salt=SALT)


def visitor_from_token(token: object) -> Visitor | None:
    """The visitor a token names, if the server signed it within WIDGET_VISITOR_DAYS; else None."""
    if not isinstance(token, str) or not token or len(token) > 500:
        return None
    try:
        payload = signing.loads(token, salt=SALT, max_age=settings.WIDGET_VISITOR_DAYS * 86400)
        return Visitor(id=uuid.UUID(hex=payload["v"]), bot_id=uuid.UUID(hex=payload["b"]))
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        return None


def bot_allows_page(bot: Bot, origin: str | None, *, own_origin: str) -> bool:
    """A page of this origin may use the bot: it is public and lists the origin, or it is Bytchat's own."""
    normalized = origin_normalize(origin)
    if not bot.public or normalized is None:
        return False
    if normalized == origin_normalize(own_origin):
        return True
    return normalized in {origin_normalize(allowed) for allowed in bot.allowed_origins}
