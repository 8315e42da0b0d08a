"""Personal API keys: `GET/POST /api-keys`, `DELETE /api-keys/{id}`.

Managed with a JWT only: a key cannot mint or revoke keys, so a leaked key can be revoked by the
account and cannot entrench itself.
"""

from __future__ import annotations

from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.authentication import JWTAuthentication

from accounts.models import ApiKey
from accounts.selectors import api_key_get, api_key_list
from accounts.services import api_key_create, api_key_revoke
from core.api.serializers import StrictSerializer, validated


class ApiKeyCreateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=100, help_text=_("What the key is for, e.g. “my OpenAI client”."))


class ApiKeySerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiKey
        fields = ["id", "name", "prefix", "created_at", "last_used_at", "revoked_at"]
        read_only_fields = fields


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.CharField(help_text="The key itself: shown this once, never again.")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]
        read_only_fields = fields


class ApiKeyListView(APIView):
    # the active keys limit
    error_statuses = {"POST": {409}}
    authentication_classes = [JWTAuthentication]

    @extend_schema(responses={200: ApiKeySerializer(many=True)})
    def get(self, request: Request) -> Response:
        return Response(ApiKeySerializer(api_key_list(user=request.user), many=True).data)

    @extend_schema(request=ApiKeyCreateSerializer, responses={201: ApiKeyCreatedSerializer})
    def post(self, request: Request) -> Response:
        data = validated(ApiKeyCreateSerializer, request.data)
        key, raw = api_key_create(user=request.user, name=data["name"])
        key.key = raw
        return Response(ApiKeyCreatedSerializer(key).data, status=status.HTTP_201_CREATED)


class ApiKeyDetailView(APIView):
    authentication_classes = [JWTAuthentication]

    @extend_schema(responses={204: None}, description="Revoke the key: requests with it get 401 from now on.")
    def delete(self, request: Request, key_id: int) -> Response:
        api_key_revoke(key=api_key_get(user=request.user, key_id=key_id))
        return Response(status=status.HTTP_204_NO_CONTENT)
