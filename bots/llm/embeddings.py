"""Embeddings through the openai SDK against the configured provider's /v1/embeddings endpoint."""

from __future__ import annotations

import logging
import threading

import openai
from django.conf import settings
from django.utils.translation import gettext as _

from bots.llm import provider_is_configured
from bots.llm.errors import ProviderError, ProviderNotConfigured

logger = logging.getLogger(__name__)
_clients: dict[tuple[str, str], openai.OpenAI] = {}
_lock = threading.Lock()


def embeddings_enabled() -> bool:
    name = settings.EMBEDDINGS_PROVIDER
    return bool(name) and name != "local" and provider_is_configured(name)


def _client() -> openai.OpenAI:
    name = settings.EMBEDDINGS_PROVIDER
    config = settings.LLM_PROVIDERS.get(name)
    if not embeddings_enabled() or config is None:
        raise ProviderNotConfigured(_("No embeddings provider is configured."))
    key = (config["base_url"], config["api_key"])
    with _lock:
        client = _clients.get(key)
        if client is None:
            client = openai.OpenAI(
                api_key=config["api_key"] or "no-key",
                base_url=config["base_url"],
                timeout=openai.Timeout(settings.LLM_READ_TIMEOUT, connect=settings.LLM_CONNECT_TIMEOUT),
                max_retries=settings.LLM_MAX_RETRIES,
            )
            _clients[key] = client
    return client


def embed_texts(texts: list[str]) -> list[list[float]]:
    """One vector per text, in order; batched. Raises ProviderError on any failure."""
    vectors: list[list[float]] = []
    client = _client()
    for start in range(0, len(texts), settings.EMBEDDINGS_BATCH):
        batch = texts[start : start + settings.EMBEDDINGS_BATCH]
        try:
            response = client.embeddings.create(model=settings.EMBEDDINGS_MODEL, input=batch)
        except openai.OpenAIError as exc:
            logger.warning("embeddings provider %s failed: %s", settings.EMBEDDINGS_PROVIDER, str(exc)[:300])
            raise ProviderError(
                _("The embeddings provider %(provider)s failed.") % {"provider": settings.EMBEDDINGS_PROVIDER}
            ) from exc
        ordered = sorted(response.data, key=lambda item: item.index)
        if len(ordered) != len(batch):
            raise ProviderError(_("The embeddings provider returned the wrong number of vectors."))
        vectors.extend(item.embedding for item in ordered)
    return vectors
