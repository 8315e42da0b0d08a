"""Signed, expiring, single-use tickets that open one chat session's WebSocket (003, RELIABILITY E3).

A browser cannot set headers on `new WebSocket(url)`, so the URL itself carries the credential. A
ticket names one session and one user, lives WS_TICKET_SECONDS, and opens one socket: it is useless
to anyone who reads it later from a log or a proxy.
"""

from __future__ import annotations

import secrets
import uuid

from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.utils.translation import gettext as _

from config.errors import DomainError

SALT = "bytchat.chats.ws-ticket"


class TicketRefused(DomainError):
    status_code = 403
    code = "ticket_invalid"


def ticket_issue(*, user_id: int, session_id: uuid.UUID | str) -> str:
    payload = {"s": uuid.UUID(str(session_id)).hex, "u": user_id, "n": secrets.token_urlsafe(12)}
    return signing.dumps(payload, salt=SALT)


def _used_key(nonce: str) -> str:
    return f"ws-ticket-used:{nonce}"


def ticket_redeem(*, ticket: str, session_id: uuid.UUID | str) -> int:
    """The user id of a valid ticket for this session, which is used up; else TicketRefused."""
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
    # Atomic in every cache we run (locmem, Redis SET NX): of two sockets racing on one ticket, one opens.
    if not cache.add(_used_key(payload["n"]), 1, timeout=settings.WS_TICKET_SECONDS + 5):
        raise TicketRefused(
            _("The connection ticket was already used; ask for a new WebSocket URL."), code="ticket_used"
        )
    return payload["u"]
