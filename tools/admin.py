"""Tool servers (credentials never shown), tools (the policy is the one thing staff change), and every tool
call with its decision, read-only."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from tools.models import Tool, ToolCall, ToolServer


class ToolInline(admin.TabularInline):
    model = Tool
    extra = 0
    fields = ["name", "description", "policy"]
    readonly_fields = ["name", "description"]
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ToolServer)
class ToolServerAdmin(admin.ModelAdmin):
    """Servers are attached through the API (host checks, the tools fetched); staff may read and detach them."""

    list_display = ["name", "bot", "url", "has_credentials", "tools_fetched_at", "fetch_error", "created_at"]
    list_filter = ["created_at"]
    search_fields = ["name", "url", "bot__name", "bot__owner__email"]
    list_select_related = ["bot"]
    fields = ["id", "bot", "name", "url", "has_credentials", "tools_fetched_at", "fetch_error", "created_at"]
    readonly_fields = fields
    inlines = [ToolInline]

    @admin.display(boolean=True, description=_("has credentials"))
    def has_credentials(self, server: ToolServer) -> bool:
        return bool(server.credentials)

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(Tool)
class ToolAdmin(admin.ModelAdmin):
    list_display = ["name", "bot", "server", "policy", "created_at"]
    list_editable = ["policy"]
    list_filter = ["policy", ("server", admin.EmptyFieldListFilter)]
    search_fields = ["name", "description", "bot__name", "bot__owner__email", "server__name"]
    list_select_related = ["bot", "server"]
    fields = ["id", "bot", "server", "name", "description", "input_schema", "policy", "created_at"]
    readonly_fields = ["id", "bot", "server", "name", "description", "input_schema", "created_at"]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(ToolCall)
class ToolCallAdmin(admin.ModelAdmin):
    """Every call a model asked for: what was asked, who decided and how it ended."""

    list_display = ["tool_name", "status", "decided_by", "duration_ms", "result_chars", "created_at"]
    list_filter = ["status", "decided_by", "created_at"]
    search_fields = ["tool_name", "call_id", "run__owner__email", "message__chat__title"]
    list_select_related = ["tool"]
    readonly_fields = [field.name for field in ToolCall._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
