"""What an export may hold, and the largest file it can make (docs/export.md)."""

from __future__ import annotations

from django.utils.translation import gettext as _

from core.errors import DomainError

# A whole chat (every branch): checked with one aggregate before any message is read.
EXPORT_MAX_MESSAGES = 10_000
EXPORT_MAX_CHARS = 10_000_000
# The branch a PDF prints. Measured with templates/chats/export.html on 2 shared cores: 1,000,000
# characters in 500 messages rendered in 7.4 s, 1,000 short messages in 5.7 s; EXAM_RENDER_SECONDS is 30.
PDF_MAX_MESSAGES = 2_000
PDF_MAX_CHARS = 1_000_000
# Measured: about 0.4 bytes of PDF per character of text; a larger file means a runaway render.
PDF_MAX_BYTES = 10 * 1024 * 1024
# Markdown and JSON framing: a message's id, parent, role, status, model (200 characters), dates and
# headings. Text costs at most 6 bytes a character (a control character escaped as \u001f in JSON).
FRAMING_BYTES_PER_MESSAGE = 2048
FRAMING_BYTES = 4096
BYTES_PER_CHAR = 6


class ExportTooLarge(DomainError):
    """Valid, but past what this format can hold: a 422 naming the bound and what to use instead."""

    status_code = 422
    code = "export_too_large"


def size_bound(*, messages: int, chars: int) -> int:
    """The most bytes a Markdown or JSON export of this many messages and characters can take."""
    return FRAMING_BYTES + messages * FRAMING_BYTES_PER_MESSAGE + chars * BYTES_PER_CHAR


def chat_bounds_check(*, messages: int, chars: int) -> None:
    if messages > EXPORT_MAX_MESSAGES or chars > EXPORT_MAX_CHARS:
        raise ExportTooLarge(
            _(
                "This chat is too large to export: %(messages)d messages and %(chars)d characters, "
                "where an export holds at most %(max_messages)d messages and %(max_chars)d characters."
            )
            % {
                "messages": messages,
                "chars": chars,
                "max_messages": EXPORT_MAX_MESSAGES,
                "max_chars": EXPORT_MAX_CHARS,
            }
        )


def pdf_bounds_check(*, messages: int, chars: int) -> None:
    if messages > PDF_MAX_MESSAGES or chars > PDF_MAX_CHARS:
        raise ExportTooLarge(
            _(
                "This chat is too large for a PDF: its current branch has %(messages)d messages and "
                "%(chars)d characters, where a PDF holds at most %(max_messages)d messages and "
                "%(max_chars)d characters. Export it as Markdown (format=markdown) or JSON (format=json)."
            )
            % {
                "messages": messages,
                "chars": chars,
                "max_messages": PDF_MAX_MESSAGES,
                "max_chars": PDF_MAX_CHARS,
            }
        )
