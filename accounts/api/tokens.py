"""The 001 token surface: OAuth2-style password login, refresh with rotation, and revocation."""

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.services import token_pair_issue, token_pair_refresh, token_revoke
from accounts.throttles import LoginRateThrottle
from core.api.serializers import StrictSerializer


class TokenObtainSerializer(StrictSerializer):
    username = serializers.CharField(max_length=254, help_text="The account's email.")
    password = serializers.CharField(max_length=128, style={"input_type": "password"})
    # OAuth2 password-flow clients send these; they are accepted and ignored.
    grant_type = serializers.CharField(required=False, allow_blank=True)
    scope = serializers.CharField(required=False, allow_blank=True)
    client_id = serializers.CharField(required=False, allow_blank=True)
    client_secret = serializers.CharField(required=False, allow_blank=True)


class TokenRefreshSerializer(StrictSerializer):
    refresh_token = serializers.CharField(required=False)
    refresh = serializers.CharField(required=False, help_text="Alias of refresh_token.")

    def validate(self, attrs: dict) -> dict:
        token = attrs.get("refresh_token") or attrs.get("refresh")
        if not token:
            raise serializers.ValidationError({"refresh_token": ["This field is required."]})
        return {"refresh_token": token}


class TokenPairSerializer(serializers.Serializer):
    access_token = serializers.CharField()
    refresh_token = serializers.CharField()
    token_type = serializers.CharField(default="bearer")
    expires_in = serializers.IntegerField(help_text="Seconds until the access token expires.")


def token_response(pair: dict[str, str]) -> Response:
    lifetime = settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"].total_seconds()
    return Response({**pair, "token_type": "bearer", "expires_in": int(lifetime)})


class TokenObtainView(APIView):
    # wrong credentials
    error_statuses = {401}
    permission_classes = [AllowAny]
    authentication_classes: list = []
    throttle_classes = [LoginRateThrottle]

    @extend_schema(request=TokenObtainSerializer, responses={200: TokenPairSerializer}, auth=[])
    def post(self, request: Request) -> Response:
        serializer = TokenObtainSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        return token_response(
            token_pair_issue(request=request._request, email=data["username"], password=data["password"])
        )


class TokenRefreshView(APIView):
    # an invalid, expired or revoked refresh token
    error_statuses = {401}
    permission_classes = [AllowAny]
    authentication_classes: list = []

    @extend_schema(request=TokenRefreshSerializer, responses={200: TokenPairSerializer}, auth=[])
    def post(self, request: Request) -> Response:
        serializer = TokenRefreshSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return token_response(token_pair_refresh(refresh_token=serializer.validated_data["refresh_token"]))


class TokenRevokeView(APIView):
    # an invalid refresh token
    error_statuses = {401}
    permission_classes = [AllowAny]
    authentication_classes: list = []

    @extend_schema(request=TokenRefreshSerializer, responses={204: None}, auth=[])
    def post(self, request: Request) -> Response:
        serializer = TokenRefreshSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        token_revoke(refresh_token=serializer.validated_data["refresh_token"])
        return Response(status=status.HTTP_204_NO_CONTENT)
