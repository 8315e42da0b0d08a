"""What follows a document's deletion, whatever deleted it (API, admin, cascades): its chunks leave the
owner's SQLite full-text index, and its file is removed once the deletion commits.

Signals rather than service calls because cascades (a bot, a base, a user deleted) delete
documents without passing through any service.
"""

from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_delete, pre_delete
from django.dispatch import receiver

from knowledge import sqlite_fts
from knowledge.models import Document


@receiver(pre_delete, sender=Document)
def unindex_document_chunks(sender, instance: Document, **kwargs) -> None:
    # Before the chunk rows go: a contentless FTS5 index is told each removed chunk's text.
    sqlite_fts.unindex_document(owner_id=instance.owner_id, document_id=instance.pk)


@receiver(post_delete, sender=settings.AUTH_USER_MODEL)
def drop_owner_index(sender, instance, **kwargs) -> None:
    sqlite_fts.drop_index(owner_id=instance.pk)


@receiver(post_delete, sender=Document)
def remove_document_file(sender, instance: Document, **kwargs) -> None:
    if instance.file:
        storage, name = instance.file.storage, instance.file.name
        transaction.on_commit(lambda: storage.delete(name))
