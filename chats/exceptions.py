"""Errors of the chats domain that more than one module raises or tells apart."""

from __future__ import annotations

from django.utils.translation import gettext as _

from core.errors import NotFound


class ChatNotFound(NotFound):
    """The chat does not exist or is not the caller's; a chat-session socket closes on it."""

    code = "chat_not_found"

    def default_message(self) -> str:
        return _("Chat not found.")
