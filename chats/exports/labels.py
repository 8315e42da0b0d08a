"""The words Markdown and PDF exports share: role headings, status notes, sources, in the request's language."""

from __future__ import annotations

import datetime
import re
from typing import Any

from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from chats.models import Chat, Message, MessageStatus, Role

_SPACE = re.compile(r"\s+")


def chat_title(chat: Chat) -> str:
    """The title on one line (a heading cannot hold a line break)."""
    return _SPACE.sub(" ", chat.title).strip() or _("Untitled chat")


def role_labels() -> dict[str, str]:
    """Headings by role, resolved now: a streamed file is written after the request's language is gone."""
    return {Role.USER: _("You"), Role.ASSISTANT: _("Assistant"), Role.SYSTEM: _("System")}


def status_notes() -> dict[str, str]:
    """What a reader should know about an answer that did not end normally."""
    return {
        MessageStatus.STREAMING: _("still being written"),
        MessageStatus.ERROR: _("stopped by an error"),
        MessageStatus.CANCELLED: _("stopped"),
        MessageStatus.INTERRUPTED: _("interrupted"),
    }


def message_note(message: Message, notes: dict[str, str], client_note: str) -> str:
    parts = [notes[message.status]] if message.status in notes else []
    if message.authored_by_client:
        parts.append(client_note)
    return ", ".join(parts)


def when(moment: datetime.datetime) -> str:
    return formats.date_format(timezone.localtime(moment), "DATETIME_FORMAT")


def summary_line(*, chat: Chat, messages: int, exported_at: datetime.datetime) -> str:
    parts = [
        _("Created: %(date)s") % {"date": when(chat.created_at)},
        _("Exported: %(date)s") % {"date": when(exported_at)},
        ngettext("%(count)d message", "%(count)d messages", messages) % {"count": messages},
    ]
    if chat.bot is not None:
        parts.append(_("Bot: %(name)s") % {"name": chat.bot.name})
    return " · ".join(parts)


def source_label(citation: Any) -> str:
    """A document with its page, or a web page's title and address."""
    if not isinstance(citation, dict):
        return str(citation)
    if citation.get("url"):
        title = str(citation.get("title") or "").strip()
        return f"{title} — {citation['url']}" if title else str(citation["url"])
    filename = str(citation.get("filename") or _("unnamed document"))
    page = citation.get("page")
    if page is None:
        return filename
    return _("%(filename)s, page %(page)s") % {"filename": filename, "page": page}
