"""`/usage`: 000's count of today's model calls (POST), and the day's and month's figures (GET)."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api.learnyourown import LearnyourownSerializer, LearnyourownView, valid
from accounts.authentication import check_named_user
from accounts.selectors import calls_today, usage_summary


class TotalsSerializer(serializers.Serializer):
    requests = serializers.IntegerField(help_text="Model calls charged.")
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    total_tokens = serializers.IntegerField()


class TodaySerializer(TotalsSerializer):
    date = serializers.DateField()
    quota = serializers.IntegerField(allow_null=True, help_text="Model calls a day; null is unlimited.")
    remaining = serializers.IntegerField(allow_null=True)
    resets_at = serializers.DateTimeField()


class MonthSerializer(TotalsSerializer):
    start = serializers.DateField()


class SurfaceTotalsSerializer(TotalsSerializer):
    surface = serializers.CharField()


class ModelTotalsSerializer(TotalsSerializer):
    model = serializers.CharField()


class UsageSummarySerializer(serializers.Serializer):
    usage = serializers.IntegerField(help_text="Today's model calls, as POST returns it.")
    today = TodaySerializer()
    month = MonthSerializer()
    by_surface = SurfaceTotalsSerializer(many=True, help_text="This month, by the surface that asked.")
    by_model = ModelTotalsSerializer(many=True, help_text="This month, by the model that answered.")


class UsageView(LearnyourownView):
    @extend_schema(
        request=LearnyourownSerializer,
        responses={200: inline_serializer("DailyUsageCount", {"usage": serializers.IntegerField()})},
        description="Model calls charged to the caller today (000). The JWT comes in the header or as `token`.",
    )
    def post(self, request: Request) -> Response:
        valid(LearnyourownSerializer, request)
        return Response({"usage": calls_today(user=request.user)})

    @extend_schema(responses={200: UsageSummarySerializer})
    def get(self, request: Request) -> Response:
        check_named_user(request, request.user)
        return Response(UsageSummarySerializer(usage_summary(user=request.user)).data)
