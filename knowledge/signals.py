"""What follows a document's deletion, whatever deleted it (API, admin, cascades): its chunks leave the
SQLite postings and statistics, and its file is removed once the deletion commits.

Signals rather than service calls because cascades (a bot, a base, a user deleted) delete
documents without passing through any service.
"""

from django.db import transaction
from django.db.models.signals import post_delete, pre_delete
from django.dispatch import receiver

from knowledge import sqlite_bm25
from knowledge.models import Document, KnowledgeBase


@receiver(pre_delete, sender=Document)
def unindex_document_chunks(sender, instance: Document, **kwargs) -> None:
    # Before the chunk rows go: their text is tokenized again to know which postings to remove.
    sqlite_bm25.unindex_document(knowledge_base_id=instance.knowledge_base_id, document_id=instance.pk)


@receiver(post_delete, sender=KnowledgeBase)
def remove_base_postings(sender, instance: KnowledgeBase, **kwargs) -> None:
    sqlite_bm25.remove_base(knowledge_base_id=instance.pk)


@receiver(post_delete, sender=Document)
def remove_document_file(sender, instance: Document, **kwargs) -> None:
    if instance.file:
        storage, name = instance.file.storage, instance.file.name
        transaction.on_commit(lambda: storage.delete(name))
