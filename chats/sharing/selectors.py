"""Reads on share links: the owner's links, and a live link's snapshot by its token (public)."""

from __future__ import annotations

import uuid

from django.db.models import Func, IntegerField, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from chats.models import ShareLink
from core.errors import NotFound


class JSONArrayLength(Func):
    """The length of a JSON array column (SQLite's json_array_length, PostgreSQL's jsonb_array_length)."""

    function = "JSON_ARRAY_LENGTH"
    output_field = IntegerField()

    def as_postgresql(self, compiler, connection, **extra_context):
        return super().as_sql(compiler, connection, function="JSONB_ARRAY_LENGTH", **extra_context)


class ShareNotFound(NotFound):
    code = "share_not_found"

    def default_message(self) -> str:
        return _("Share link not found.")


def _listed(queryset: QuerySet[ShareLink]) -> QuerySet[ShareLink]:
    # The snapshot can be megabytes: a list counts its messages in the database and never loads it.
    return queryset.defer("snapshot").annotate(message_count=JSONArrayLength("snapshot"))


def share_link_list(*, user: User) -> QuerySet[ShareLink]:
    """The user's share links, live, expired and revoked, newest first."""
    return _listed(ShareLink.objects.filter(owner=user)).order_by("-created_at", "-id")


def share_link_get(*, user: User, share_id: uuid.UUID | str) -> ShareLink:
    """One of the user's share links; another user's is a 404, the same as a missing one."""
    share = _listed(ShareLink.objects.filter(owner=user, pk=share_id)).first()
    if share is None:
        raise ShareNotFound()
    return share


def shared_snapshot_get(*, token: str) -> ShareLink:
    """The live link with this token: revoked, expired and unknown tokens are the same 404."""
    share = None
    if isinstance(token, str) and 0 < len(token) <= 64:
        live = Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now())
        share = ShareLink.objects.filter(live, token=token, revoked_at__isnull=True).first()
    if share is None:
        raise ShareNotFound(_("This share link does not exist, was revoked or has expired."))
    return share
