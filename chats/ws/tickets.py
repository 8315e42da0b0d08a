"""Signed, expiring, single-use tickets that open one chat session's WebSocket (003, docs/reliability.md E3).

A browser cannot set headers on `new WebSocket(url)`, so the URL itself carries the credential. A
ticket names one session and one user, lives WS_TICKET_SECONDS, and opens one socket: it is useless
to anyone who reads it later from a log or a proxy. A visitor's ticket (the widget) also names the
visitor and the page origin it was issued to: only a handshake from that origin may use it.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.utils.translation import gettext as _

from core.errors import DomainError

SALT = "bytchat.chats.ws-ticket"


class TicketRefused(DomainError):
    status_code = 403
    code = "ticket_invalid"


@dataclass(frozen=True, slots=True)
class Ticket:
    user_id: int
    visitor_id: uuid.UUID | None = None
    origin: str = ""
    # The page is Bytchat's own (the demo), as the HTTP request that issued the ticket saw it.
    own_page: bool = False


def ticket_issue(
    *,
    user_id: int,
    session_id: uuid.UUID | str,
    visitor_id: uuid.UUID | None = None,
    origin: str = "",
    own_page: bool = False,
) -> str:
    payload: dict[str, object] = {"s": uuid.UUID(str(session_id)).hex, "u": user_id, "n": secrets.token_urlsafe(12)}
    if visitor_id is not None:
        payload.update(v=visitor_id.hex, o=origin, w=own_page)
    return signing.dumps(payload, salt=SALT)


def ticket_origin(ticket: str) -> str:
    """The origin a visitor's ticket was issued to, read without using the ticket up; "" for any other."""
    try:
        payload = signing.loads(ticket, salt=SALT, max_age=settings.WS_TICKET_SECONDS)
    except signing.BadSignature:
        return ""
    origin = payload.get("o") if isinstance(payload, dict) else None
    return origin if isinstance(origin, str) else ""


def _used_key(nonce: str) -> str:
    return f"ws-ticket-used:{nonce}"


def ticket_redeem(*, ticket: str, session_id: uuid.UUID | str, origin: str | None = None) -> Ticket:
    """Who a valid ticket for this session lets in; the ticket is used up. Else TicketRefused.

    A visitor's ticket is used up only by a handshake from the page `origin` it was issued to
    (spelt as bots.origins.origin_of_header spells it): one refused for its origin leaves it unused.
    """
    try:
        payload = signing.loads(ticket, salt=SALT, max_age=settings.WS_TICKET_SECONDS)
    except signing.SignatureExpired as exc:
        raise TicketRefused(
            _("The connection ticket has expired; ask for a new WebSocket URL."), code="ticket_expired"
        ) from exc
    except signing.BadSignature as exc:
        raise TicketRefused(_("The connection ticket is not valid.")) from exc
    if not (
        isinstance(payload, dict)
        and isinstance(payload.get("s"), str)
        and isinstance(payload.get("u"), int)
        and isinstance(payload.get("n"), str)
    ):
        raise TicketRefused(_("The connection ticket is not valid."))
    if payload["s"] != uuid.UUID(str(session_id)).hex:
        raise TicketRefused(_("The connection ticket is for another session."), code="ticket_wrong_session")
    visitor = payload.get("v")
    if visitor is not None and (not isinstance(payload.get("o"), str) or origin != payload["o"]):
        raise TicketRefused(_("This connection is for another page."), code="origin_not_allowed")
    # Atomic in every cache we run (locmem, Redis SET NX): of two sockets racing on one ticket, one opens.
    if not cache.add(_used_key(payload["n"]), 1, timeout=settings.WS_TICKET_SECONDS + 5):
        raise TicketRefused(
            _("The connection ticket was already used; ask for a new WebSocket URL."), code="ticket_used"
        )
    if visitor is None:
        return Ticket(user_id=payload["u"])
    if not isinstance(visitor, str):
        raise TicketRefused(_("The connection ticket is not valid."))
    return Ticket(
        user_id=payload["u"], visitor_id=uuid.UUID(hex=visitor), origin=payload["o"], own_page=payload.get("w") is True
    )
