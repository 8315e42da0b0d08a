"""The 001 users surface: `POST /users/` registers, `GET /users/me` reads the caller."""

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User
from accounts.services import user_create
from accounts.throttles import RegisterRateThrottle
from core.api.serializers import StrictSerializer


class UserCreateSerializer(StrictSerializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(max_length=128, write_only=True, style={"input_type": "password"})
    username = serializers.CharField(max_length=254, required=False, help_text=_("Defaults to the email."))


class UserSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["id", "email", "username", "user_type", "is_active", "date_joined"]
        read_only_fields = fields


class UserCreateView(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []
    throttle_classes = [RegisterRateThrottle]

    @extend_schema(request=UserCreateSerializer, responses={200: UserSerializer}, auth=[])
    def post(self, request: Request) -> Response:
        serializer = UserCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = user_create(**serializer.validated_data)
        # The seed documents 200 for a created user.
        return Response(UserSerializer(user).data, status=status.HTTP_200_OK)


class CurrentUserView(APIView):
    @extend_schema(responses={200: UserSerializer})
    def get(self, request: Request) -> Response:
        return Response(UserSerializer(request.user).data)
