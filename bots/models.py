"""Bots: a persona (system prompt) and model configs routed by task type."""

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class TaskType(models.TextChoices):
    GENERAL = "general", _("General")
    COMPLEX = "complex", _("Complex reasoning")
    CODE = "code", _("Code")
    SUMMARIZE = "summarize", _("Summaries")


class ProviderName(models.TextChoices):
    LOCAL = "local", _("Offline local model")
    OPENAI = "openai", "OpenAI"
    GOOGLE = "google", "Google Gemini"
    ANTHROPIC = "anthropic", "Anthropic"
    OLLAMA = "ollama", "Ollama"
    VLLM = "vllm", "vLLM"
    OPENROUTER = "openrouter", "OpenRouter"
    CUSTOM = "custom", _("Custom OpenAI-compatible server")


class Bot(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="bots", verbose_name=_("owner")
    )
    name = models.CharField(_("name"), max_length=120)
    description = models.TextField(_("description"), blank=True, max_length=2000)
    system_prompt = models.TextField(_("system prompt"), blank=True, max_length=8000)
    # Public mode (the web widget): anonymous visitors of an allowed origin chat with the bot,
    # on its owner's quota. The key is publishable: it names the bot, it grants nothing else.
    public = models.BooleanField(_("public"), default=False)
    public_key = models.CharField(_("public key"), max_length=64, unique=True, null=True, blank=True, editable=False)
    allowed_origins = models.JSONField(
        _("allowed origins"),
        default=list,
        blank=True,
        help_text=_('Pages allowed to embed the widget, e.g. ["https://www.example.com"].'),
    )
    # The bot of the /demo/ page; at most one.
    demo = models.BooleanField(_("demo bot"), default=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("bot")
        verbose_name_plural = _("bots")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["owner", "-created_at"])]
        constraints = [
            models.UniqueConstraint(fields=["demo"], condition=models.Q(demo=True), name="bots_one_demo_bot")
        ]

    def __str__(self) -> str:
        return self.name


class ModelConfig(models.Model):
    bot = models.ForeignKey(Bot, on_delete=models.CASCADE, related_name="model_configs", verbose_name=_("bot"))
    task_type = models.CharField(_("task type"), max_length=20, choices=TaskType, default=TaskType.GENERAL)
    provider = models.CharField(_("provider"), max_length=20, choices=ProviderName)
    model_id = models.CharField(_("model id"), max_length=200)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("model config")
        verbose_name_plural = _("model configs")
        ordering = ["created_at", "id"]
        constraints = [models.UniqueConstraint(fields=["bot", "task_type"], name="bots_one_model_per_task_type")]

    def __str__(self) -> str:
        return f"{self.task_type}: {self.provider}/{self.model_id}"
