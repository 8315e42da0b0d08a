from django.contrib import admin
from django.db.models import Count
from django.utils.translation import gettext_lazy as _

from bots.models import Bot, ModelConfig


class ModelConfigInline(admin.TabularInline):
    model = ModelConfig
    extra = 0
    fields = ["task_type", "provider", "model_id", "created_at"]
    readonly_fields = ["created_at"]


class KnowledgeBaseInline(admin.TabularInline):
    """The knowledge bases a bot answers from (attached from either side)."""

    model = Bot.knowledge_bases.through
    extra = 0
    raw_id_fields = ["knowledgebase"]
    verbose_name = _("attached knowledge base")
    verbose_name_plural = _("attached knowledge bases")


@admin.register(Bot)
class BotAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "model_count", "created_at", "updated_at"]
    list_filter = ["created_at", "model_configs__provider"]
    search_fields = ["name", "description", "owner__email"]
    list_select_related = ["owner"]
    raw_id_fields = ["owner"]
    readonly_fields = ["id", "created_at", "updated_at"]
    inlines = [ModelConfigInline, KnowledgeBaseInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(model_total=Count("model_configs"))

    @admin.display(description=_("models"), ordering="model_total")
    def model_count(self, bot: Bot) -> int:
        return bot.model_total


@admin.register(ModelConfig)
class ModelConfigAdmin(admin.ModelAdmin):
    list_display = ["bot", "task_type", "provider", "model_id", "created_at"]
    list_filter = ["provider", "task_type"]
    search_fields = ["bot__name", "model_id", "bot__owner__email"]
    list_select_related = ["bot"]
    raw_id_fields = ["bot"]
