from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from core.admin import NoBulkDeleteMixin
from knowledge.models import Chunk, Document, KnowledgeBase
from knowledge.services import document_delete, document_reindex


class DocumentInline(admin.TabularInline):
    model = Document
    extra = 0
    fields = ["filename", "status", "progress", "error", "size", "created_at"]
    readonly_fields = fields
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(KnowledgeBase)
class KnowledgeBaseAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "home_of", "created_at"]
    search_fields = ["name", "owner__email"]
    list_select_related = ["owner", "home_of"]
    # Ownership is fixed where the data was created; staff can rename and attach bots.
    readonly_fields = ["owner", "home_of", "created_at", "updated_at"]
    filter_horizontal = ["bots"]
    inlines = [DocumentInline]


@admin.register(Document)
class DocumentAdmin(NoBulkDeleteMixin, admin.ModelAdmin):
    """Read-only but for the actions, which call the services (re-index, delete with files)."""

    list_display = ["filename", "owner", "knowledge_base", "status", "progress", "attempts", "size", "created_at"]
    list_filter = ["status", "content_type", "created_at"]
    search_fields = ["filename", "owner__email", "knowledge_base__name", "checksum"]
    list_select_related = ["owner", "knowledge_base"]
    readonly_fields = [field.name for field in Document._meta.fields]
    actions = ["reindex", "delete_with_files"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description=_("Re-index the selected documents"))
    def reindex(self, request, queryset) -> None:
        for document in queryset:
            document_reindex(document=document)
        self.message_user(request, _("%(n)d document(s) queued.") % {"n": queryset.count()}, messages.SUCCESS)

    @admin.action(description=_("Delete the selected documents and their files"))
    def delete_with_files(self, request, queryset) -> None:
        count = 0
        for document in queryset:
            document_delete(document=document)
            count += 1
        self.message_user(request, _("%(n)d document(s) deleted.") % {"n": count}, messages.SUCCESS)


@admin.register(Chunk)
class ChunkAdmin(admin.ModelAdmin):
    list_display = ["document", "position", "page", "token_count"]
    search_fields = ["text", "document__filename"]
    list_select_related = ["document"]
    readonly_fields = ["document", "knowledge_base", "owner", "position", "page", "text", "token_count"]

    def has_add_permission(self, request) -> bool:
        return False

    # A chunk goes with its document (which keeps the full-text index in step), never alone.
    def has_delete_permission(self, request, obj=None) -> bool:
        return False
