"""What every 000 (learnyourown) endpoint shares: its identity fields and how it authenticates.

The seed sends the JWT as `token` in the JSON body (the Authorization header works too and wins)
and names its user in `user`, which must be the caller; `type_user` is never trusted (the
account's own type is). Unknown fields are refused (docs/reliability.md B5).
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers
from rest_framework.parsers import FormParser, JSONParser
from rest_framework.request import Request
from rest_framework.views import APIView
from rest_framework_simplejwt.authentication import JWTAuthentication

from accounts.authentication import BodyTokenAuthentication, check_named_user
from core.api.serializers import StrictSerializer, validated


class LearnyourownSerializer(StrictSerializer):
    user = serializers.CharField(required=False, allow_blank=True)
    token = serializers.CharField(required=False, allow_blank=True, write_only=True)
    type_user = serializers.CharField(required=False, allow_blank=True, max_length=50)


class LearnyourownView(APIView):
    # `user` naming another account
    error_statuses = {403}
    authentication_classes = [JWTAuthentication, BodyTokenAuthentication]
    parser_classes = [JSONParser, FormParser]


def valid(serializer_class: type[serializers.Serializer], request: Request) -> dict[str, Any]:
    """The request's validated body, once `user` is checked to name the caller."""
    data = validated(serializer_class, request.data)
    check_named_user(request, request.user)
    return data
