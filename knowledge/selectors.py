"""Reads on knowledge, scoped to the owner: another user's base or document does not exist."""

from __future__ import annotations

import uuid

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from accounts.models import User
from bots.models import Bot
from core.errors import NotFound
from knowledge.models import Document, KnowledgeBase


def knowledge_base_list(*, owner: User) -> QuerySet[KnowledgeBase]:
    return KnowledgeBase.objects.filter(owner=owner).order_by("name")


def knowledge_base_get(*, owner: User, name: str) -> KnowledgeBase:
    base = KnowledgeBase.objects.filter(owner=owner, name=" ".join(name.split())).first()
    if base is None:
        raise NotFound(_("Knowledge base not found."), code="knowledge_base_not_found")
    return base


def document_list(
    *, owner: User, knowledge_base: KnowledgeBase | None = None, bot: Bot | None = None
) -> QuerySet[Document]:
    """The owner's documents; with `knowledge_base` or `bot`, only those in it or attached to it."""
    documents = Document.objects.filter(owner=owner).select_related("knowledge_base")
    if knowledge_base is not None:
        documents = documents.filter(knowledge_base=knowledge_base)
    if bot is not None:
        documents = documents.filter(knowledge_base__in=KnowledgeBase.objects.filter(bots=bot))
    return documents.order_by("-created_at")


def document_get(
    *,
    owner: User,
    document_id: uuid.UUID | str,
    knowledge_base: KnowledgeBase | None = None,
    bot: Bot | None = None,
) -> Document:
    document = document_list(owner=owner, knowledge_base=knowledge_base, bot=bot).filter(pk=document_id).first()
    if document is None:
        raise NotFound(_("Document not found."), code="document_not_found")
    return document


def knowledge_base_ids_for_bot(*, bot_id: uuid.UUID) -> list[uuid.UUID]:
    return list(KnowledgeBase.objects.filter(bots=bot_id).values_list("id", flat=True))


def knowledge_base_ids_for_owner(*, owner_id: int) -> list[uuid.UUID]:
    return list(KnowledgeBase.objects.filter(owner_id=owner_id).values_list("id", flat=True))
