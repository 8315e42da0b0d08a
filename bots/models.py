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
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("bot")
        verbose_name_plural = _("bots")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["owner", "-created_at"])]

    def __str__(self) -> str:
        return self.name


class ModelConfig(models.Model):
    bot = models.ForeignKey(Bot, on_delete=models.CASCADE, related_name="model_configs", verbose_name=_("bot"))
    task_type = models.CharField(_("task type"), max_length=20, choices=TaskType.choices, default=TaskType.GENERAL)
    provider = models.CharField(_("provider"), max_length=20, choices=ProviderName.choices)
    model_id = models.CharField(_("model id"), max_length=200)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("model config")
        verbose_name_plural = _("model configs")
        ordering = ["created_at", "id"]
        constraints = [models.UniqueConstraint(fields=["bot", "task_type"], name="bots_one_model_per_task_type")]

    def __str__(self) -> str:
        return f"{self.task_type}: {self.provider}/{self.model_id}"
