from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from chats.feedback.admin import FeedbackAdmin  # noqa: F401 (registers the feedback admin)
from chats.models import Chat, Message, Run, ShareLink
from chats.sharing.services import share_link_revoke
from tools.models import ToolCall


class ToolCallInline(admin.TabularInline):
    """Every tool call of an answer and how it was decided (docs/tools.md)."""

    model = ToolCall
    extra = 0
    can_delete = False
    fields = [
        "round",
        "index",
        "tool_name",
        "arguments",
        "status",
        "decided_by",
        "decided_by_user",
        "decided_at",
        "result_chars",
        "truncated",
        "duration_ms",
        "error",
    ]
    readonly_fields = fields
    ordering = ["round", "index"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class MessageInline(admin.TabularInline):
    model = Message
    extra = 0
    can_delete = False
    fields = ["created_at", "role", "status", "content", "model", "finish_reason", "completion_tokens"]
    readonly_fields = fields
    ordering = ["created_at"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Chat)
class ChatAdmin(admin.ModelAdmin):
    """Read-mostly: staff can read and delete chats; messages are written by the engine only."""

    list_display = ["__str__", "owner", "bot", "surface", "created_at", "updated_at"]
    list_filter = ["surface", "created_at"]
    search_fields = ["title", "owner__email", "bot__name"]
    list_select_related = ["owner", "bot"]
    readonly_fields = ["id", "owner", "bot", "title", "context", "surface", "current_node", "created_at", "updated_at"]
    inlines = [MessageInline]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ["chat", "role", "status", "model", "finish_reason", "created_at"]
    list_filter = ["role", "status", "created_at"]
    search_fields = ["content", "chat__title", "chat__owner__email"]
    list_select_related = ["chat"]
    readonly_fields = [field.name for field in Message._meta.fields]
    inlines = [ToolCallInline]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    """Answers as they run and how they ended; which process holds each and until when (docs/runs.md)."""

    list_display = ["id", "chat", "owner", "surface", "status", "seq", "lease_holder", "lease_expires_at", "created_at"]
    list_filter = ["status", "surface", "created_at"]
    search_fields = ["id", "chat__title", "owner__email", "lease_holder"]
    list_select_related = ["chat", "owner"]
    readonly_fields = [field.name for field in Run._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ShareLink)
class ShareLinkAdmin(admin.ModelAdmin):
    """Read-only: links are made by their owners; staff can revoke them (docs/sharing.md)."""

    list_display = ["__str__", "owner", "chat", "created_at", "expires_at", "revoked_at"]
    list_filter = ["created_at", "revoked_at"]
    search_fields = ["title", "owner__email", "chat__title"]
    list_select_related = ["owner", "chat"]
    readonly_fields = [field.name for field in ShareLink._meta.fields]
    actions = ["revoke_share_links"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def get_queryset(self, request):
        # The snapshot (up to megabytes) is read only on a link's own page.
        return super().get_queryset(request).defer("snapshot")

    def has_revoke_permission(self, request) -> bool:
        return request.user.has_perm("chats.change_sharelink")

    @admin.action(description=_("Revoke the selected share links"), permissions=["revoke"])
    def revoke_share_links(self, request, queryset) -> None:
        for share in queryset.filter(revoked_at__isnull=True):
            share_link_revoke(share=share)
