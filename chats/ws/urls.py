"""The URL a client opens the chat-session socket with, a ticket included (sessions and the widget)."""

from __future__ import annotations

import uuid
from urllib.parse import urlencode

from rest_framework.request import Request

from chats.ws.tickets import ticket_issue


def websocket_url(
    request: Request,
    session_id: uuid.UUID,
    *,
    user_id: int | None = None,
    visitor_id: uuid.UUID | None = None,
    origin: str = "",
    own_page: bool = False,
) -> str:
    """Usable as given (`new WebSocket(url)`): browsers cannot send an Authorization header there.
    The ticket is for the caller, or (the widget) for a bot owner's visitor on the page `origin`."""
    scheme = "wss" if request.is_secure() else "ws"
    ticket = ticket_issue(
        user_id=request.user.pk if user_id is None else user_id,
        session_id=session_id,
        visitor_id=visitor_id,
        origin=origin,
        own_page=own_page,
    )
    return f"{scheme}://{request.get_host()}/chat/ws/{session_id}?{urlencode({'ticket': ticket})}"
