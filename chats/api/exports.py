"""GET /chats/{chat_id}/export: the caller's chat as a Markdown, JSON or PDF attachment (docs/export.md)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

from django.http import HttpResponse, StreamingHttpResponse
from django.urls import re_path
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.request import Request
from rest_framework.views import APIView

from chats.exports.filenames import attachment_header
from chats.exports.markdown import markdown_chunks
from chats.exports.pdf import export_pdf
from chats.exports.selectors import chat_export_get
from chats.exports.tree import json_chunks
from core.api.serializers import validated
from core.paths import UUID

FORMATS = {
    "markdown": ("md", "text/markdown; charset=utf-8"),
    "json": ("json", "application/json"),
    "pdf": ("pdf", "application/pdf"),
}
ATTACHMENT = 'The file, as `Content-Disposition: attachment; filename="<title>-<date>.<md|json|pdf>"`.'
# Pieces are sent in writes of about this size, not one write per message.
STREAM_CHUNK_BYTES = 64 * 1024


class ExportQuerySerializer(serializers.Serializer):
    format = serializers.ChoiceField(choices=list(FORMATS), default="markdown")


class ErrorsAsJson(BaseContentNegotiation):
    """`format` names the export, not a DRF renderer, and `Accept: application/pdf` must not be a
    406: errors are always JSON, and a file is an HttpResponse that needs no renderer."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


async def _encoded(pieces: Iterator[str]) -> AsyncIterator[bytes]:
    # An async iterator: under ASGI Django would read a sync one whole before sending a byte.
    batch: list[bytes] = []
    size = 0
    for piece in pieces:
        data = piece.encode("utf-8", errors="replace")
        batch.append(data)
        size += len(data)
        if size >= STREAM_CHUNK_BYTES:
            yield b"".join(batch)
            batch, size = [], 0
    if batch:
        yield b"".join(batch)


class ChatExportView(APIView):
    content_negotiation_class = ErrorsAsJson
    # too large for the format (or a PDF that failed to render)
    error_statuses = {422}

    @extend_schema(
        operation_id="chat_export",
        parameters=[
            OpenApiParameter("chat_id", OpenApiTypes.UUID, OpenApiParameter.PATH),
            OpenApiParameter(
                "format",
                OpenApiTypes.STR,
                OpenApiParameter.QUERY,
                enum=list(FORMATS),
                default="markdown",
                description="`markdown` and `pdf`: the current branch as a transcript; `json`: every "
                "message of every branch, with ids and parents.",
            ),
        ],
        responses={
            (200, "text/markdown"): OpenApiResponse(OpenApiTypes.STR, description=ATTACHMENT),
            (200, "application/json"): OpenApiResponse(OpenApiTypes.OBJECT, description=ATTACHMENT),
            (200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY, description=ATTACHMENT),
        },
        description="Your chat as a file to download (`Content-Disposition: attachment`). Another user's chat "
        "is a 404. A chat past the export's bounds, or a branch past the PDF's, is a 422 `export_too_large` "
        "(docs/export.md); a PDF that fails to render is a 422 `render_failed`.",
    )
    def get(self, request: Request, chat_id: str) -> HttpResponse:
        chosen = validated(ExportQuerySerializer, request.query_params)["format"]
        extension, content_type = FORMATS[chosen]
        export = chat_export_get(user=request.user, chat_id=chat_id)
        exported_at = timezone.now()
        headers = {
            "Content-Disposition": attachment_header(
                chat=export.chat, day=timezone.localdate(exported_at), extension=extension
            ),
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
        }
        if chosen == "pdf":
            pdf = export_pdf(export=export, exported_at=exported_at)
            return HttpResponse(pdf, content_type=content_type, headers=headers)
        pieces = (markdown_chunks if chosen == "markdown" else json_chunks)(export=export, exported_at=exported_at)
        return StreamingHttpResponse(_encoded(pieces), content_type=content_type, headers=headers)


urlpatterns = [
    re_path(rf"^chats/(?P<chat_id>{UUID})/export/?$", ChatExportView.as_view(), name="chat-export"),
]
