"""The model-provider layer: `get_provider(name)` returns what every chat surface streams from."""

from __future__ import annotations

from django.conf import settings
from django.utils.translation import gettext as _

from bots.llm.base import Provider, complete
from bots.llm.errors import ProviderError, ProviderNotConfigured, UnknownProvider
from bots.llm.local import LocalProvider
from bots.llm.openai import ClientSettings, OpenAICompatibleProvider
from bots.llm.types import ChatMessage, CompletionRequest, ModelSpec, StreamEnd, TextDelta, Usage

__all__ = [
    "ChatMessage",
    "CompletionRequest",
    "ModelSpec",
    "Provider",
    "ProviderError",
    "StreamEnd",
    "TextDelta",
    "Usage",
    "complete",
    "get_provider",
    "provider_is_configured",
]


def provider_is_configured(name: str) -> bool:
    if name == "local":
        return True
    config = settings.LLM_PROVIDERS.get(name)
    if config is None:
        return False
    return bool(config[config.get("requires", "api_key")])


def get_provider(name: str) -> Provider:
    if name == "local":
        return LocalProvider(word_delay=settings.LLM_LOCAL_WORD_DELAY)
    config = settings.LLM_PROVIDERS.get(name)
    if config is None:
        raise UnknownProvider(_("Unknown model provider: %(provider)s.") % {"provider": name})
    if not provider_is_configured(name):
        needed = "API key" if config.get("requires", "api_key") == "api_key" else "base URL"
        raise ProviderNotConfigured(
            _("The model provider %(provider)s is not configured on this server (no %(needed)s).")
            % {"provider": name, "needed": needed}
        )
    return OpenAICompatibleProvider(
        name=name,
        config=ClientSettings(
            base_url=config["base_url"],
            api_key=config["api_key"],
            connect_timeout=settings.LLM_CONNECT_TIMEOUT,
            read_timeout=settings.LLM_READ_TIMEOUT,
            total_timeout=settings.LLM_TOTAL_TIMEOUT,
            max_retries=settings.LLM_MAX_RETRIES,
            transport=settings.LLM_HTTP_TRANSPORT,
        ),
    )


def default_model_spec() -> ModelSpec:
    return ModelSpec(provider=settings.LLM_PROVIDER, model=settings.LLM_MODEL, source="default")
