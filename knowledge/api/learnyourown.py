"""The 000 (learnyourown) context surface: load, retrieve, list and delete a user's named knowledge."""

from __future__ import annotations

import base64
import binascii

from django.conf import settings
from django.http import HttpResponse
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api.learnyourown import LearnyourownSerializer, LearnyourownView, valid
from core.errors import DomainError
from knowledge.retrieval import search
from knowledge.selectors import document_list, knowledge_base_get, knowledge_base_list
from knowledge.services import documents_store_all, knowledge_base_delete, read_upload, upload_check

MAX_FILES_PER_LOAD = settings.DATA_UPLOAD_MAX_NUMBER_FILES


class InlineFileSerializer(serializers.Serializer):
    filename = serializers.CharField(max_length=1000)
    content = serializers.CharField(help_text="The file, base64-encoded.")


class LoadContextSerializer(LearnyourownSerializer):
    name = serializers.CharField(max_length=200)
    files = InlineFileSerializer(many=True, required=False)


class ContextSerializer(LearnyourownSerializer):
    text = serializers.CharField(max_length=settings.CHAT_MAX_QUERY_CHARS)


class NameSerializer(LearnyourownSerializer):
    name = serializers.CharField(max_length=200)


class DocumentsFilterSerializer(LearnyourownSerializer):
    name = serializers.CharField(max_length=200, required=False)


class LoadContextView(LearnyourownView):
    # a full knowledge base
    error_statuses = {403}
    parser_classes = [JSONParser, MultiPartParser]

    @extend_schema(
        request=LoadContextSerializer,
        responses={200: inline_serializer("LoadContextResult", {"result": serializers.BooleanField()})},
        description="Queues the files into the caller's knowledge base `name` (created if needed). JSON with "
        "base64 `files`, or multipart with `name` and one or more `files`. Every file is checked first: "
        "one refused file refuses the request and nothing is stored.",
    )
    def post(self, request: Request) -> Response:
        data = valid(LoadContextSerializer, request)
        uploads = [(f["filename"], self._decode(f)) for f in data.get("files", [])]
        uploads += [(upload.name, read_upload(upload)) for upload in request.FILES.getlist("files")]
        if not uploads:
            raise DomainError(_("files: send at least one file."), code="invalid")
        if len(uploads) > MAX_FILES_PER_LOAD:
            raise DomainError(_("files: at most %(n)d files per request.") % {"n": MAX_FILES_PER_LOAD}, code="invalid")
        checked = [upload_check(filename=name, data=content) for name, content in uploads]
        documents_store_all(owner=request.user, name=data["name"], checked=checked)
        return Response({"result": True})

    @staticmethod
    def _decode(item: dict) -> bytes:
        try:
            return base64.b64decode(item["content"], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise DomainError(
                _("files: the content of %(name)s is not valid base64.") % {"name": item["filename"][:100]},
                code="invalid",
            ) from exc


class ContextView(LearnyourownView):
    @extend_schema(
        request=ContextSerializer,
        responses={200: str},
        description="The passages of the caller's documents that best match `text`, as plain text "
        "(each headed by its number and source); with `Accept: application/json`, "
        '`{"context": ..., "citations": [...]}`.',
    )
    def post(self, request: Request):
        data = valid(ContextSerializer, request)
        passages = search(owner_id=request.user.pk, query=data["text"], limit=settings.KNOWLEDGE_PASSAGES_IN_CONTEXT)
        text = "\n\n".join(
            f"[{number}] {p.filename}{f', page {p.page}' if p.page else ''}\n{p.text}"
            for number, p in enumerate(passages, start=1)
        )
        if "application/json" in request.headers.get("Accept", ""):
            return Response({"context": text, "citations": [p.citation() for p in passages]})
        return HttpResponse(text, content_type="text/plain; charset=utf-8")


class GetNameView(LearnyourownView):
    @extend_schema(
        request=LearnyourownSerializer,
        responses={200: inline_serializer("Names", {"result": serializers.ListField(child=serializers.CharField())})},
    )
    def post(self, request: Request) -> Response:
        valid(LearnyourownSerializer, request)
        return Response({"result": list(knowledge_base_list(owner=request.user).values_list("name", flat=True))})


class GetDocumentsView(LearnyourownView):
    # a knowledge base named in the body
    error_statuses = {403, 404}

    @extend_schema(
        request=DocumentsFilterSerializer,
        responses={
            200: inline_serializer("Filenames", {"result": serializers.ListField(child=serializers.CharField())})
        },
    )
    def post(self, request: Request) -> Response:
        data = valid(DocumentsFilterSerializer, request)
        base = knowledge_base_get(owner=request.user, name=data["name"]) if data.get("name") else None
        documents = document_list(owner=request.user, knowledge_base=base)
        return Response({"result": list(documents.values_list("filename", flat=True))})


class DeleteNameView(LearnyourownView):
    # a knowledge base named in the body
    error_statuses = {403, 404}

    @extend_schema(request=NameSerializer, responses={200: bool})
    def post(self, request: Request) -> Response:
        data = valid(NameSerializer, request)
        knowledge_base_delete(knowledge_base=knowledge_base_get(owner=request.user, name=data["name"]))
        return Response(True)
