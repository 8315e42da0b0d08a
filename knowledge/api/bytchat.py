"""The 001 training surface: `POST /bots/{bot_id}/train` and the bot's documents."""

from __future__ import annotations

from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from bots.selectors import bot_get
from core.errors import DomainError
from knowledge.models import Document
from knowledge.selectors import document_get, document_list
from knowledge.services import bot_train, document_delete


class DocumentSerializer(serializers.ModelSerializer):
    knowledge_base = serializers.CharField(source="knowledge_base.name", read_only=True)

    class Meta:
        model = Document
        fields = [
            "id",
            "filename",
            "content_type",
            "size",
            "status",
            "progress",
            "error",
            "knowledge_base",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class BotTrainView(APIView):
    # a full knowledge base
    error_statuses = {403}
    parser_classes = [MultiPartParser]

    @extend_schema(
        request=inline_serializer("TrainUpload", {"file": serializers.FileField()}),
        responses={202: DocumentSerializer, 200: DocumentSerializer},
        description=(
            "Uploads a .txt, .md, .pdf, .html or .docx file; ingestion runs in the background. 202 with the "
            "queued document; 200 with the existing document when the same file was already uploaded."
        ),
    )
    def post(self, request: Request, bot_id) -> Response:
        bot = bot_get(user=request.user, bot_id=bot_id)
        files = request.FILES.getlist("file")
        if len(files) != 1:
            raise DomainError(_("file: send exactly one file in the multipart field 'file'."), code="invalid")
        document, created = bot_train(bot=bot, upload=files[0])
        document.refresh_from_db()
        return Response(
            DocumentSerializer(document).data, status=status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK
        )


class BotDocumentListView(APIView):
    @extend_schema(responses={200: DocumentSerializer(many=True)})
    def get(self, request: Request, bot_id) -> Response:
        bot = bot_get(user=request.user, bot_id=bot_id)
        documents = document_list(owner=request.user, bot=bot)
        return Response(DocumentSerializer(documents, many=True).data)


class BotDocumentDetailView(APIView):
    def _document(self, request: Request, bot_id, document_id) -> Document:
        return document_get(owner=request.user, document_id=document_id, bot=bot_get(user=request.user, bot_id=bot_id))

    @extend_schema(responses={200: DocumentSerializer})
    def get(self, request: Request, bot_id, document_id) -> Response:
        return Response(DocumentSerializer(self._document(request, bot_id, document_id)).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, bot_id, document_id) -> Response:
        document_delete(document=self._document(request, bot_id, document_id))
        return Response(status=status.HTTP_204_NO_CONTENT)
