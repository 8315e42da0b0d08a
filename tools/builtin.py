"""The built-in tools a bot's owner can turn on: search the bot's knowledge, search the web. Each returns
text for the model (fenced as data) and the citations the answer then carries."""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.utils.translation import gettext as _

from chats.prompts import passages_block, web_results_block
from chats.websearch import web_search, web_search_enabled
from core.errors import DomainError
from knowledge.retrieval import search

KNOWLEDGE_SEARCH = "knowledge_search"
WEB_SEARCH = "web_search"

QUERY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"query": {"type": "string", "description": "What to look up."}},
    "required": ["query"],
}

DESCRIPTIONS = {
    KNOWLEDGE_SEARCH: "Search the documents this assistant was given; returns numbered passages to cite.",
    WEB_SEARCH: "Search the web; returns numbered results (title, address, snippet) to cite.",
}


def builtin_available(name: str) -> bool:
    """Whether this server can offer the built-in at all (web search needs SEARXNG_URL)."""
    return name == KNOWLEDGE_SEARCH or (name == WEB_SEARCH and web_search_enabled())


def _query(arguments: dict[str, Any]) -> str:
    query = arguments.get("query")
    if not isinstance(query, str) or not query.strip():
        raise DomainError(_("Give the search a non-empty `query`."), code="invalid_arguments")
    return query.strip()[: settings.CHAT_MAX_QUERY_CHARS]


async def builtin_call(
    name: str,
    arguments: dict[str, Any],
    *,
    owner_id: int,
    knowledge_base_ids: tuple[uuid.UUID, ...] | None,
    first_citation: int,
) -> tuple[str, list[dict[str, Any]]]:
    """The built-in's text for the model and its citations, numbered from `first_citation`; DomainError
    when it cannot run (the model is told why)."""
    from chats.streaming import released  # the engine imports this module

    query = _query(arguments)
    if name == KNOWLEDGE_SEARCH:
        passages = await released(search)(
            owner_id=owner_id,
            query=query,
            knowledge_base_ids=knowledge_base_ids,
            limit=settings.KNOWLEDGE_PASSAGES_IN_CONTEXT,
        )
        if not passages:
            return _("No passage of the documents matches this search."), []
        text = passages_block(passages, first_number=first_citation)
        return text, [passage.citation() for passage in passages]
    results = await web_search(query)
    if not results:
        return _("The web search found nothing."), []
    return web_results_block(results, first_citation), [result.citation() for result in results]
