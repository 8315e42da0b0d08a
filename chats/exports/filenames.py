"""The name an export is saved under: a slug of the title and the date, safe in a Content-Disposition header."""

from __future__ import annotations

import datetime
from urllib.parse import quote

from django.utils.text import slugify

from chats.models import Chat

MAX_SLUG_CHARS = 80


def _slug(title: str, *, allow_unicode: bool) -> str:
    # slugify keeps letters, digits, `_` and `-` only: no quote, slash, backslash or control character survives.
    return slugify(title, allow_unicode=allow_unicode)[:MAX_SLUG_CHARS].strip("-_") or "chat"


def export_filename(*, chat: Chat, day: datetime.date, extension: str, allow_unicode: bool = False) -> str:
    return f"{_slug(chat.title, allow_unicode=allow_unicode)}-{day.isoformat()}.{extension}"


def attachment_header(*, chat: Chat, day: datetime.date, extension: str) -> str:
    """`attachment; filename="…"` in ASCII, and `filename*=` (RFC 6266) when the title has other letters."""
    ascii_name = export_filename(chat=chat, day=day, extension=extension)
    header = f'attachment; filename="{ascii_name}"'
    unicode_name = export_filename(chat=chat, day=day, extension=extension, allow_unicode=True)
    if unicode_name != ascii_name:
        header += f"; filename*=UTF-8''{quote(unicode_name, safe='')}"
    return header
