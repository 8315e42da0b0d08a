from django.contrib import admin

from chats.models import Chat, Message


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

    def has_add_permission(self, request) -> bool:
        return False
