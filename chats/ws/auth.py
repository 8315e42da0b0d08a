"""Who may open a chat-session socket: the Origin policy, then a ticket or an access JWT (docs/reliability.md E1-E4).

Browsers always send `Origin` and attach no credential a page did not put in the URL, so a foreign
page cannot ride on a user's session (no cookie is involved); clients without an Origin (servers,
mobile apps, scripts) are authenticated by the ticket or token alone.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from channels.db import database_sync_to_async
from django.conf import settings
from django.http.request import split_domain_port, validate_host
from django.utils.translation import gettext as _
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.authentication import JWTAuthentication

from accounts.models import User
from bots.models import Bot
from bots.origins import host_origin, origin_normalize, origin_of_header
from chats.models import Chat
from chats.selectors import chat_get, visitor_chat_get
from chats.visitors import bot_allows_page
from chats.ws.tickets import Ticket, ticket_origin, ticket_redeem
from core.errors import DomainError, NotAuthenticated

logger = logging.getLogger(__name__)


async def refuse(scope: dict, receive: Any, send: Any) -> None:
    """Close the handshake before accepting it (daphne answers HTTP 403).

    A bare ASGI app, not a consumer: a refused socket never touches the channel layer (with
    channels-redis, a consumer stopped right after it started can hang on its Redis read).
    """
    message = await receive()
    if message["type"] == "websocket.connect":
        await send({"type": "websocket.close"})


def _allowed_hosts() -> list[str]:
    """ALLOWED_HOSTS as Django reads it (with DEBUG and none set: the local names)."""
    hosts = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not hosts:
        hosts = [".localhost", "127.0.0.1", "[::1]"]
    return hosts


def _header(scope: dict, name: bytes) -> list[str]:
    return [value.decode("latin1") for key, value in scope.get("headers", []) if key.lower() == name]


def origin_allowed(scope: dict) -> bool:
    """No Origin: allowed (not a browser). A browser's Origin must be exactly this server's own, a
    scheme, host and port (the handshake's Host, a host in ALLOWED_HOSTS), or one of WS_ALLOWED_ORIGINS."""
    origins = _header(scope, b"origin")
    if not origins:
        return True
    origin = origin_of_header(origins[0]) if len(origins) == 1 else None
    if origin is None:
        return False
    if origin in {origin_normalize(allowed) for allowed in settings.WS_ALLOWED_ORIGINS}:
        return True
    hosts = _header(scope, b"host")
    if len(hosts) != 1 or host_origin(hosts[0], urlsplit(origin).scheme) != origin:
        return False
    domain, _port = split_domain_port(hosts[0])
    return bool(domain) and validate_host(domain, _allowed_hosts())


def handshake_origin(scope: dict) -> str | None:
    """The handshake's Origin (None when absent), as the page that opened the socket sent it."""
    origins = _header(scope, b"origin")
    return origins[0] if origins else None


def visitor_ticket_origin_matches(scope: dict) -> bool:
    """A widget visitor's ticket was issued to exactly this page origin (checked in full at the handshake)."""
    origin = origin_of_header(handshake_origin(scope))
    issued_to = ticket_origin(_query_value(scope.get("query_string", b""), "ticket"))
    return origin is not None and origin == issued_to


class OriginPolicyMiddleware:
    """Refuses (HTTP 403, before accept) a WebSocket handshake whose Origin is not allowed: one of
    Bytchat's hosts or WS_ALLOWED_ORIGINS, or the page a widget visitor's ticket was issued to."""

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "websocket" and not origin_allowed(scope) and not visitor_ticket_origin_matches(scope):
            return await refuse(scope, receive, send)
        return await self.application(scope, receive, send)


@dataclass(frozen=True, slots=True)
class SocketIdentity:
    user_id: int
    # The password hash at the handshake: a change (or reset) revokes the socket, as it revokes tokens.
    password: str
    # When the access JWT of the handshake expires; None for a ticket (the socket's age is capped instead).
    expires_at: float | None = None
    # A public bot's visitor (the widget): `user_id` is the bot's owner, who pays; the socket is the
    # visitor's, from the page `origin`, and lasts while the bot is public and allows that page.
    visitor_id: uuid.UUID | None = None
    bot_id: uuid.UUID | None = None
    origin: str = ""
    own_origin: str = ""

    @property
    def stream_holder(self) -> str | None:
        return f"visitor:{self.visitor_id.hex}" if self.visitor_id is not None else None


def _query_value(query_string: bytes, name: str) -> str:
    try:
        values = parse_qs(query_string.decode("latin1"), max_num_fields=10).get(name, [])
    except ValueError:  # too many fields
        return ""
    return values[-1] if values else ""


def socket_authenticate(*, query_string: bytes, session_id: uuid.UUID, origin: str | None = None) -> SocketIdentity:
    """The identity behind `?ticket=` (preferred) or `?token=` (an access JWT), owning the session.

    A widget visitor's ticket opens only the visitor's chat, from the page origin it was issued to,
    while the bot allows that page. Anything else raises a DomainError and the handshake is refused.
    Runs the ORM: call it in a thread.
    """
    ticket = _query_value(query_string, "ticket")
    token = _query_value(query_string, "token")
    expires_at: float | None = None
    if ticket:
        redeemed = ticket_redeem(ticket=ticket, session_id=session_id, origin=origin_of_header(origin))
        if redeemed.visitor_id is not None:
            return _visitor_identity(redeemed, session_id=session_id, origin=origin)
        user = User.objects.filter(pk=redeemed.user_id).first()
        if user is None or not user.is_active:
            raise NotAuthenticated(_("User not found or inactive."), code="user_inactive")
    elif token:
        # DRF's rules for the Authorization header: an access token (not a refresh one), an active
        # user, issued after the last password change (CHECK_REVOKE_TOKEN).
        authentication = JWTAuthentication()
        try:
            validated = authentication.get_validated_token(token.encode())
            user = authentication.get_user(validated)
        except AuthenticationFailed as exc:
            raise NotAuthenticated(code="token_not_valid") from exc
        expires_at = float(validated["exp"])
    else:
        raise NotAuthenticated()
    chat_get(user=user, chat_id=session_id)
    return SocketIdentity(user_id=user.pk, password=user.password, expires_at=expires_at)


def _visitor_identity(ticket: Ticket, *, session_id: uuid.UUID, origin: str | None) -> SocketIdentity:
    own = ticket.origin if ticket.own_page else ""
    chat = visitor_chat_get(visitor_id=ticket.visitor_id, chat_id=session_id)
    if chat.owner_id != ticket.user_id or not bot_allows_page(chat.bot, ticket.origin, own_origin=own):
        raise NotAuthenticated(_("This page may not use this chat."), code="origin_not_allowed")
    return SocketIdentity(
        user_id=chat.owner_id,
        password="",
        visitor_id=ticket.visitor_id,
        bot_id=chat.bot_id,
        origin=ticket.origin,
        own_origin=own,
    )


def identity_turn_get(identity: SocketIdentity, session_id: uuid.UUID) -> tuple[User, Chat]:
    """The socket's user, still allowed to use it, and the session it asks in: for a signed-in user,
    one query (the chat with its owner and bot); any refusal is the same as `socket_identity_check`'s
    then `identity_chat_get`'s."""
    if identity.visitor_id is None:
        chat = Chat.objects.owned_by(identity.user_id).filter(pk=session_id).select_related("owner", "bot").first()
        if chat is not None and _user_refusal(identity, chat.owner) is None:
            return chat.owner, chat
    user = socket_identity_check(identity)
    return user, identity_chat_get(identity, user, session_id)


def identity_chat_get(identity: SocketIdentity, user: User, session_id: uuid.UUID) -> Chat:
    """The session as this socket may use it: the user's chat, or the visitor's."""
    if identity.visitor_id is not None:
        return visitor_chat_get(visitor_id=identity.visitor_id, chat_id=session_id)
    return chat_get(user=user, chat_id=session_id)


def socket_identity_check(identity: SocketIdentity) -> User:
    """The socket's user (a visitor's: the bot owner), still allowed to use it (docs/reliability.md E4), or
    NotAuthenticated. Runs the ORM."""
    if identity.visitor_id is not None:
        return _visitor_check(identity)
    user = User.objects.filter(pk=identity.user_id).first()
    refusal = _user_refusal(identity, user)
    if refusal is not None:
        raise refusal
    return user


def _user_refusal(identity: SocketIdentity, user: User | None) -> NotAuthenticated | None:
    """Why a signed-in user's socket may no longer be used, if it may not."""
    if user is None or not user.is_active or user.password != identity.password:
        return NotAuthenticated(
            _("Your account was deactivated or its password changed; sign in again."), code="credentials_revoked"
        )
    if identity.expires_at is not None and time.time() >= identity.expires_at:
        return NotAuthenticated(_("Your access token has expired; reconnect with a new one."), code="token_expired")
    return None


class SessionHandshakeMiddleware:
    """Lets a handshake reach the consumer only with a ticket or token of a user owning the session.

    The consumer finds the identity in `scope["chat_session"]`; anything else is refused before
    accept, without a consumer or a channel (docs/reliability.md A1, B4, E2).
    """

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        try:
            session_id = uuid.UUID(scope["url_route"]["kwargs"]["session_id"])
            identity = await database_sync_to_async(socket_authenticate, thread_sensitive=False)(
                query_string=scope.get("query_string", b""),
                session_id=session_id,
                origin=handshake_origin(scope),
            )
        except DomainError as exc:
            logger.info("refused a chat session socket: %s", exc.code)
            return await refuse(scope, receive, send)
        except Exception:
            logger.exception("could not check a chat session socket; refused")
            return await refuse(scope, receive, send)
        return await self.application({**scope, "chat_session": identity}, receive, send)


def _visitor_check(identity: SocketIdentity) -> User:
    """The bot's owner, while the owner is active and the visitor's bot is public and allows the page."""
    bot = Bot.objects.filter(pk=identity.bot_id).select_related("owner").first()
    if (
        bot is None
        or not bot.owner.is_active
        or not bot_allows_page(bot, identity.origin, own_origin=identity.own_origin)
    ):
        raise NotAuthenticated(_("This chat is no longer available on this page."), code="widget_unavailable")
    return bot.owner
