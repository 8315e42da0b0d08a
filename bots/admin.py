from django import forms
from django.contrib import admin, messages
from django.db.models import Count
from django.utils.translation import gettext_lazy as _

from bots.models import Bot, ModelConfig
from bots.services import (
    allowed_origins_clean,
    bot_public_key_rotate,
    bot_public_set,
    demo_bot_set,
    public_key_new,
)
from core.errors import DomainError


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


class BotForm(forms.ModelForm):
    class Meta:
        model = Bot
        fields = ["owner", "name", "description", "system_prompt", "public", "allowed_origins"]

    def clean_allowed_origins(self) -> list[str]:
        try:
            return allowed_origins_clean(self.cleaned_data.get("allowed_origins") or [])
        except DomainError as exc:
            raise forms.ValidationError(exc.message) from exc


@admin.register(Bot)
class BotAdmin(admin.ModelAdmin):
    form = BotForm
    list_display = ["name", "owner", "model_count", "public", "demo", "created_at", "updated_at"]
    list_filter = ["public", "demo", "created_at", "model_configs__provider"]
    search_fields = ["name", "description", "owner__email", "public_key"]
    list_select_related = ["owner"]
    raw_id_fields = ["owner"]
    readonly_fields = ["id", "public_key", "demo", "created_at", "updated_at"]
    inlines = [ModelConfigInline, KnowledgeBaseInline]
    actions = ["make_demo_bot", "rotate_public_key"]

    def save_model(self, request, obj: Bot, form, change) -> None:
        if obj.public and not obj.public_key:
            obj.public_key = public_key_new()  # a public bot needs its publishable key
        super().save_model(request, obj, form, change)

    @admin.action(description=_("Show the selected bot on the /demo/ page (made public)"))
    def make_demo_bot(self, request, queryset) -> None:
        if queryset.count() != 1:
            self.message_user(request, _("Select exactly one bot."), messages.WARNING)
            return
        bot = queryset.get()
        bot_public_set(bot=bot, public=True)
        demo_bot_set(bot=bot)
        self.message_user(request, _("%(name)s is the demo bot.") % {"name": bot.name}, messages.SUCCESS)

    @admin.action(description=_("Give the selected public bots a new public key"))
    def rotate_public_key(self, request, queryset) -> None:
        rotated = 0
        for bot in queryset.filter(public=True):
            bot_public_key_rotate(bot=bot)
            rotated += 1
        self.message_user(request, _("%(n)d key(s) replaced.") % {"n": rotated}, messages.SUCCESS)

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
