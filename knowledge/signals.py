"""Removes a document's file once its deletion commits, whatever deleted it (API, admin, cascades).

A signal rather than a service call because cascades (a bot, a base, a user deleted) delete
documents without passing through any service.
"""

from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from knowledge.models import Document


@receiver(post_delete, sender=Document)
def remove_document_file(sender, instance: Document, **kwargs) -> None:
    if instance.file:
        storage, name = instance.file.storage, instance.file.name
        transaction.on_commit(lambda: storage.delete(name))
