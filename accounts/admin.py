from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import UserChangeForm, UserCreationForm
from django.core.exceptions import PermissionDenied
from django.db.models import IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.charts import usage_chart
from accounts.models import ApiKey, DailyUsage, ModelCall, User
from accounts.quotas import daily_quota_of
from accounts.selectors import platform_usage_by_day
from accounts.services import api_key_create, api_key_revoke
from core.admin import NoBulkDeleteMixin


class UserAddForm(UserCreationForm):
    class Meta:
        model = User
        fields = ("email", "username", "user_type")


class UserEditForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    add_form = UserAddForm
    form = UserEditForm
    list_display = ["email", "username", "user_type", "quota", "calls_today", "is_active", "is_staff", "date_joined"]
    list_filter = ["user_type", "is_active", "is_staff", "is_superuser"]
    search_fields = ["email", "username", "first_name", "last_name"]
    ordering = ["-date_joined"]
    fieldsets = (
        (None, {"fields": ("email", "username", "password")}),
        (_("Plan"), {"fields": ("user_type", "daily_quota")}),
        (_("Personal info"), {"fields": ("first_name", "last_name")}),
        (_("Permissions"), {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        (_("Important dates"), {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("email", "username", "user_type", "password1", "password2")}),
    )
    readonly_fields = ["last_login", "date_joined"]

    def get_queryset(self, request: HttpRequest):
        today = DailyUsage.objects.filter(user=OuterRef("pk"), day=timezone.localdate()).values("requests")
        return (
            super()
            .get_queryset(request)
            .annotate(calls_today_count=Coalesce(Subquery(today, output_field=IntegerField()), 0))
        )

    @admin.display(description=_("daily quota"))
    def quota(self, user: User) -> str:
        quota = daily_quota_of(user)
        return _("unlimited") if quota is None else str(quota)

    @admin.display(description=_("model calls today"), ordering="calls_today_count")
    def calls_today(self, user: User) -> int:
        return user.calls_today_count


@admin.register(DailyUsage)
class DailyUsageAdmin(NoBulkDeleteMixin, admin.ModelAdmin):
    """Usage by day, read-only, with the platform's chart (`chart/`) for staff."""

    list_display = ["day", "user", "requests"]
    list_filter = ["day"]
    date_hierarchy = "day"
    search_fields = ["user__email"]
    list_select_related = ["user"]
    readonly_fields = ["user", "day", "requests"]
    ordering = ["-day", "-requests"]
    change_list_template = "admin/accounts/dailyusage/change_list.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: DailyUsage | None = None) -> bool:
        return False

    def get_urls(self):
        chart = self.admin_site.admin_view(self.chart_view)
        return [path("chart/", chart, name="accounts_dailyusage_chart"), *super().get_urls()]

    def chart_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        days = platform_usage_by_day(days=30)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Usage over the last 30 days"),
            "opts": self.model._meta,
            "days": days,
            "calls_chart": usage_chart(days, lambda day: [day.requests]),
            "tokens_chart": usage_chart(days, lambda day: [day.prompt_tokens, day.completion_tokens]),
            "total_calls": sum(day.requests for day in days),
            "total_tokens": sum(day.total_tokens for day in days),
        }
        return TemplateResponse(request, "admin/accounts/usage_chart.html", context)


@admin.register(ModelCall)
class ModelCallAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "user",
        "surface",
        "model",
        "prompt_tokens",
        "completion_tokens",
        "estimated",
        "outcome",
    ]
    list_filter = ["surface", "outcome", "estimated", "day"]
    date_hierarchy = "day"
    search_fields = ["user__email", "model"]
    list_select_related = ["user"]
    readonly_fields = [field.name for field in ModelCall._meta.fields]
    ordering = ["-created_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class ApiKeyAddForm(forms.ModelForm):
    class Meta:
        model = ApiKey
        fields = ["user", "name"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Staff make a key for a user (shown once, in the confirmation) and revoke keys; only the digest is kept."""

    list_display = ["name", "user", "prefix", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at", "created_at"]
    search_fields = ["name", "prefix", "user__email"]
    list_select_related = ["user"]
    raw_id_fields = ["user"]
    actions = ["revoke"]

    def get_form(self, request: HttpRequest, obj: ApiKey | None = None, **kwargs):
        if obj is None:
            kwargs["form"] = ApiKeyAddForm
        return super().get_form(request, obj, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> list[str]:
        if obj is None:
            return []
        return ["user", "name", "prefix", "created_at", "last_used_at", "revoked_at"]

    def get_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> list[str]:
        return ["user", "name"] if obj is None else self.get_readonly_fields(request, obj)

    def save_model(self, request: HttpRequest, obj: ApiKey, form, change: bool) -> None:
        if change:
            return  # nothing of a key is editable
        key, raw = api_key_create(user=obj.user, name=obj.name)
        obj.pk, obj.prefix, obj.digest = key.pk, key.prefix, key.digest
        self.message_user(
            request,
            _("The key for %(user)s is %(key)s. Copy it now: it is not shown again.") % {"user": obj.user, "key": raw},
            messages.WARNING,
        )

    def has_change_permission(self, request: HttpRequest, obj: ApiKey | None = None) -> bool:
        return obj is None and super().has_change_permission(request, obj)

    @admin.action(description=_("Revoke the selected API keys"))
    def revoke(self, request: HttpRequest, queryset) -> None:
        for key in queryset:
            api_key_revoke(key=key)
        self.message_user(request, _("%(n)d key(s) revoked.") % {"n": queryset.count()}, messages.SUCCESS)
