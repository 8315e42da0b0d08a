"""The current branch as a Markdown transcript; a message's text is already Markdown and is written as is."""

from __future__ import annotations

import datetime
from collections.abc import Iterator

from django.utils.translation import gettext as _

from chats.exports.labels import (
    chat_title,
    message_note,
    role_labels,
    source_label,
    status_notes,
    summary_line,
)
from chats.exports.selectors import ChatExport
from chats.models import Message


def markdown_chunks(*, export: ChatExport, exported_at: datetime.datetime) -> Iterator[str]:
    """The file in pieces, one per message. Every word is translated here, before the first piece is
    written: the pieces may be written after the request's language is deactivated."""
    head = (
        f"# {chat_title(export.chat)}\n\n"
        f"{summary_line(chat=export.chat, messages=len(export.branch), exported_at=exported_at)}\n"
    )
    words = {
        "roles": role_labels(),
        "notes": status_notes(),
        "client": _("written by the client"),
        "sources": _("Sources"),
    }
    sources = [[source_label(citation) for citation in message.citations or []] for message in export.branch]
    return _pieces(head, export.branch, sources, words)


def _pieces(head: str, branch: list[Message], sources: list[list[str]], words: dict) -> Iterator[str]:
    yield head
    for message, labels in zip(branch, sources, strict=True):
        heading = words["roles"].get(message.role, message.role)
        note = message_note(message, words["notes"], words["client"])
        if note:
            heading = f"{heading} ({note})"
        text = message.content.strip("\n")
        piece = f"\n---\n\n## {heading}\n\n{text}\n" if text else f"\n---\n\n## {heading}\n"
        if labels:
            listed = "".join(f"{number}. {label}\n" for number, label in enumerate(labels, start=1))
            piece += f"\n**{words['sources']}**\n\n{listed}"
        yield piece
