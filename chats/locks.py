"""One answer at a time per chat, whichever surface or process asks (issue 4: never two interleaved answers)."""

from __future__ import annotations

import secrets
import uuid

from django.conf import settings
from django.core.cache import cache
from django.utils.translation import gettext as _

from core.errors import Conflict
from core.shared_state import shared_state_best_effort, shared_state_required


def _key(chat_id: uuid.UUID) -> str:
    return f"chat-answering:{chat_id}"


def lock_ttl_seconds() -> int:
    """Long enough for the longest answer (every autocontinue round at the provider's deadline)."""
    return int(settings.LLM_TOTAL_TIMEOUT * (1 + settings.CHAT_AUTOCONTINUE_MAX)) + 60


def chat_answer_lock(chat_id: uuid.UUID) -> str:
    """Mark the chat as answering and return the lock's token, or refuse with 409.

    `cache.add` is atomic in every backend we run (locmem, Redis SET NX). The TTL frees a chat
    whose process died mid-answer.
    """
    token = secrets.token_hex(8)
    with shared_state_required():
        taken = cache.add(_key(chat_id), token, timeout=lock_ttl_seconds())
    if not taken:
        raise Conflict(
            _("An answer is already being generated in this chat; wait for it to finish or stop it."),
            code="chat_busy",
        )
    return token


def chat_answer_unlock(chat_id: uuid.UUID, token: str) -> None:
    # Only our own lock: after a TTL expiry another answer may hold it. Get-then-delete can race
    # only with a lock that expired at that very moment.
    with shared_state_best_effort():
        if cache.get(_key(chat_id)) == token:
            cache.delete(_key(chat_id))


def chat_is_answering(chat_id: uuid.UUID) -> bool:
    return cache.get(_key(chat_id)) is not None
