"""Writes on share links: make one (the snapshot is copied now), revoke it, continue it as a copy."""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from bots.models import Bot
from chats.models import Chat, Message, MessageStatus, Role, ShareLink
from chats.selectors import branch_messages, message_get
from chats.sharing.copies import MessageCopy, chat_copy_create
from chats.sharing.selectors import shared_snapshot_get
from core.errors import Conflict, DomainError

# Bounds of one snapshot (docs/sharing.md): what a page can show and a JSON column should hold.
SHARE_MAX_MESSAGES = 1_000
SHARE_MAX_CHARS = 2_000_000
SHARE_MAX_LIFETIME = timedelta(days=365)
# Live (neither revoked nor expired) links per user.
SHARE_MAX_LIVE_LINKS = 1_000
# What a citation may show on a public page; a knowledge document's id is the owner's and stays out.
CITATION_KEYS = ("filename", "page", "position", "text", "title", "url", "snippet")


def _citation(raw: Any) -> dict[str, Any] | None:
    if not isinstance(raw, dict):
        return None
    kept = {key: raw[key] for key in CITATION_KEYS if isinstance(raw.get(key), str | int | float)}
    return kept or None


def _snapshot_entry(message: Message, *, include_citations: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "role": message.role,
        "content": message.content,
        "created_at": message.created_at.isoformat(),
    }
    if include_citations:
        entry["citations"] = [c for c in map(_citation, message.citations or []) if c is not None]
    return entry


def _snapshot(path: list[Message], *, include_citations: bool) -> list[dict[str, Any]]:
    """The path's user and assistant messages as a reader sees them; system turns and answers that
    failed before writing anything are left out."""
    kept = [m for m in path if m.role == Role.USER or (m.role == Role.ASSISTANT and m.content)]
    if len(kept) > SHARE_MAX_MESSAGES:
        raise DomainError(
            _("A share link holds at most %(n)d messages; share an earlier message.") % {"n": SHARE_MAX_MESSAGES},
            code="share_too_large",
        )
    snapshot = [_snapshot_entry(m, include_citations=include_citations) for m in kept]
    chars = sum(len(e["content"]) + sum(len(str(c)) for c in e.get("citations", ())) for e in snapshot)
    if chars > SHARE_MAX_CHARS:
        raise DomainError(
            _("A share link holds at most %(n)d characters; share an earlier message.") % {"n": SHARE_MAX_CHARS},
            code="share_too_large",
        )
    return snapshot


def _expiry_check(expires_at: datetime | None) -> None:
    if expires_at is None:
        return
    now = timezone.now()
    if expires_at <= now or expires_at > now + SHARE_MAX_LIFETIME:
        raise DomainError(
            _("expires_at must be in the future and at most %(days)d days away.") % {"days": SHARE_MAX_LIFETIME.days},
            code="invalid",
        )


def share_link_create(
    *,
    user: User,
    chat: Chat,
    message_id: uuid.UUID | str | None = None,
    expires_at: datetime | None = None,
    include_citations: bool = False,
    title: str | None = None,
) -> ShareLink:
    """A link to a snapshot of the user's chat (from `chat_get`) up to `message_id`, by default its current
    node: the path from the root, copied now, so the chat going on or being edited never changes it."""
    _expiry_check(expires_at)
    leaf_id = message_get(chat=chat, message_id=message_id).pk if message_id is not None else chat.current_node_id
    if leaf_id is None:
        raise DomainError(_("This chat has no messages to share yet."), code="nothing_to_share")
    path = branch_messages(chat=chat, leaf_id=leaf_id)
    if path and path[-1].status == MessageStatus.STREAMING:
        raise Conflict(_("This answer is still being written; share it once it is finished."), code="chat_busy")
    snapshot = _snapshot(path, include_citations=include_citations)
    if not snapshot:
        raise DomainError(_("There is no question or answer to share up to this message."), code="nothing_to_share")
    with transaction.atomic():
        # The owner's row is locked while the links are counted (SQLite's write transactions are serialised
        # anyway), so two links made at once cannot both be the last one allowed.
        User.objects.select_for_update().filter(pk=user.pk).values_list("pk", flat=True).first()
        live = ShareLink.objects.filter(owner=user, revoked_at__isnull=True).exclude(expires_at__lte=timezone.now())
        if live.count() >= SHARE_MAX_LIVE_LINKS:
            raise DomainError(
                _("You have %(n)d live share links; revoke some first.") % {"n": SHARE_MAX_LIVE_LINKS},
                code="too_many_share_links",
                status_code=403,
            )
        share = ShareLink.objects.create(
            token=secrets.token_urlsafe(32),
            owner=user,
            chat=chat,
            message_id=leaf_id,
            title=(chat.title if title is None else title)[:200],
            snapshot=snapshot,
            include_citations=include_citations,
            expires_at=expires_at,
        )
    share.message_count = len(snapshot)
    return share


def share_link_revoke(*, share: ShareLink) -> ShareLink:
    """Stops the link from working (from `share_link_get`, which checks the owner); revoking twice changes nothing."""
    if share.revoked_at is None:
        share.revoked_at = timezone.now()
        ShareLink.objects.filter(pk=share.pk, revoked_at__isnull=True).update(revoked_at=share.revoked_at)
    return share


def share_continue(*, user: User, token: str) -> Chat:
    """A copy of a live link's snapshot as a new chat of `user` (one branch, its last message the current
    node), to go on with. The original chat's bot comes along only if `user` owns it."""
    share = shared_snapshot_get(token=token)
    bot = Bot.objects.filter(chats__pk=share.chat_id, owner=user).first()
    copies = [
        MessageCopy(
            key=index,
            parent=index - 1 if index else None,
            role=entry["role"],
            content=entry["content"],
            citations=entry.get("citations", []),
        )
        for index, entry in enumerate(share.snapshot)
    ]
    title = share.title or _("Shared chat")
    return chat_copy_create(
        owner=user, title=title, bot=bot, messages=copies, current=len(copies) - 1 if copies else None
    )
