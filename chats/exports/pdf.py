"""The current branch as a PDF: templates/chats/export.html, rendered by the exams' bounded xhtml2pdf child."""

from __future__ import annotations

import datetime
import re

from django.conf import settings
from django.template.loader import render_to_string
from django.utils.translation import gettext as _

from chats.exports.labels import chat_title, message_note, role_labels, source_label, status_notes, when
from chats.exports.limits import PDF_MAX_BYTES, pdf_bounds_check
from chats.exports.selectors import ChatExport
from core.connections import database_connection_release
from exams.rendering import RenderFailed, RenderTimeLimit, fonts_available, html_to_pdf

_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


class ExportRenderFailed(RenderFailed):
    """The child failed, ran past its time limit or made a runaway file: a 422, never a 5xx."""


def export_html(*, export: ChatExport, exported_at: datetime.datetime) -> str:
    roles, notes, client = role_labels(), status_notes(), _("written by the client")
    turns = [
        {
            "label": roles.get(message.role, message.role),
            "note": message_note(message, notes, client),
            "paragraphs": [part for part in _PARAGRAPH_BREAK.split(message.content.strip()) if part],
            "sources": [source_label(citation) for citation in message.citations or []],
        }
        for message in export.branch
    ]
    context = {
        "title": chat_title(export.chat),
        "created_at": when(export.chat.created_at),
        "exported_at": when(exported_at),
        "bot_name": export.chat.bot.name if export.chat.bot else "",
        "turns": turns,
        "embed_fonts": fonts_available(settings.EXAM_PDF_FONT_DIR),
    }
    return render_to_string("chats/export.html", context)


def export_pdf(*, export: ChatExport, exported_at: datetime.datetime) -> bytes:
    """The PDF of the chat's current branch, or a 422 when the branch is past the PDF's bounds (before
    anything is rendered) or the render fails or runs out of time."""
    pdf_bounds_check(messages=len(export.branch), chars=sum(len(message.content) for message in export.branch))
    html = export_html(export=export, exported_at=exported_at)
    # The render may take seconds: no database connection is held while the child runs.
    database_connection_release()
    try:
        pdf = html_to_pdf(html)
    except RenderTimeLimit as exc:
        raise ExportRenderFailed(
            _("The PDF took too long to render; export this chat as Markdown or JSON instead.")
        ) from exc
    except RenderFailed as exc:
        raise ExportRenderFailed(
            _("The PDF could not be rendered; export this chat as Markdown or JSON instead.")
        ) from exc
    if len(pdf) > PDF_MAX_BYTES:
        raise ExportRenderFailed(_("The PDF came out too large; export this chat as Markdown or JSON instead."))
    return pdf
