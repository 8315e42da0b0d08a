"""The whole message tree as JSON (format_version 1): every branch, with ids and parents, parents first."""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from typing import Any

from chats.exports.selectors import ChatExport
from chats.models import Message

FORMAT_VERSION = 1


def moment(value: datetime.datetime | None) -> str | None:
    """ISO 8601 with `Z` for UTC, as the API writes dates."""
    if value is None:
        return None
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _id(value: Any) -> str | None:
    return None if value is None else str(value)


def chat_fields(export: ChatExport) -> dict[str, Any]:
    chat = export.chat
    return {
        "id": str(chat.pk),
        "title": chat.title,
        "bot_id": _id(chat.bot_id),
        "surface": chat.surface,
        "created_at": moment(chat.created_at),
        "updated_at": moment(chat.updated_at),
        "current_node_id": _id(chat.current_node_id),
    }


def message_fields(message: Message) -> dict[str, Any]:
    return {
        "id": str(message.pk),
        "parent_id": _id(message.parent_id),
        "role": message.role,
        "content": message.content,
        "status": message.status,
        "model": message.model,
        "created_at": moment(message.created_at),
        "citations": message.citations or [],
    }


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def json_chunks(*, export: ChatExport, exported_at: datetime.datetime) -> Iterator[str]:
    """One JSON object, written a message at a time: the same bytes as one `json.dumps` of the whole."""
    yield (
        f'{{"format_version":{FORMAT_VERSION},"exported_at":{_dumps(moment(exported_at))},'
        f'"chat":{_dumps(chat_fields(export))},"messages":['
    )
    for index, message in enumerate(export.tree):
        yield ("," if index else "") + _dumps(message_fields(message))
    yield "]}"
