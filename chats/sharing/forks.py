"""Fork: a new chat of the owner's from one message of their chat, with its path or its whole branch."""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Literal

from django.db import connection
from django.utils.translation import gettext as _

from accounts.models import User
from chats.models import Chat, Message
from chats.selectors import branch_messages
from chats.sharing.copies import MessageCopy, chat_copy_create
from core.errors import DomainError, NotFound

# At most this many messages are copied by one fork (docs/sharing.md).
FORK_MAX_MESSAGES = 5_000
# A bound on the subtree walk's depth: a tree has no cycles, but a walk must end.
_MAX_DEPTH = 100_000

ForkMode = Literal["path", "branch"]


def _subtree(*, chat: Chat, message_id: uuid.UUID | str, limit: int) -> list[Message]:
    """The message and its descendants, shallowest first, at most `limit` rows: one recursive query."""
    table = connection.ops.quote_name(Message._meta.db_table)
    pk = Message._meta.pk
    sql = f"""
        WITH RECURSIVE subtree(id, depth) AS (
            SELECT m.id, 0 FROM {table} m WHERE m.id = %s AND m.chat_id = %s
            UNION ALL
            SELECT m.id, subtree.depth + 1 FROM {table} m JOIN subtree ON m.parent_id = subtree.id
            WHERE subtree.depth < %s
        )
        SELECT m.* FROM {table} m JOIN subtree ON m.id = subtree.id
        ORDER BY subtree.depth, m.created_at, m.id LIMIT %s
    """  # noqa: S608 (the table name is ours)
    params = [pk.get_db_prep_value(message_id, connection), pk.get_db_prep_value(chat.pk, connection)]
    return list(Message.objects.raw(sql, [*params, _MAX_DEPTH, limit]))


def _newest_leaf(root: Message, messages: list[Message]) -> Message:
    """From `root` down, always the newest child: the branch a reader of the fork sees first."""
    children: dict[uuid.UUID, list[Message]] = defaultdict(list)
    for message in messages:
        children[message.parent_id].append(message)
    node = root
    while children.get(node.pk):
        node = max(children[node.pk], key=lambda m: (m.created_at, str(m.pk)))
    return node


def _too_many() -> DomainError:
    return DomainError(
        _("A fork copies at most %(n)d messages; fork a later message or use mode path.") % {"n": FORK_MAX_MESSAGES},
        code="fork_too_large",
    )


def chat_fork(*, user: User, chat: Chat, message_id: uuid.UUID | str, mode: ForkMode = "path") -> Chat:
    """A new chat of `user` (the owner of `chat`, from `chat_get`): `path`, the messages from the root to
    `message_id`, which becomes the current node; `branch`, that path and every descendant of the message,
    as the same tree with new ids, its current node the newest leaf under the message. A message of
    another chat is a 404. Reads take two queries, whatever the chat's size."""
    path = branch_messages(chat=chat, leaf_id=message_id)
    if not path:
        raise NotFound(_("Message not found in this conversation."), code="message_not_found")
    if len(path) > FORK_MAX_MESSAGES:
        raise _too_many()
    messages, current = path, path[-1]
    if mode == "branch":
        below = _subtree(chat=chat, message_id=message_id, limit=FORK_MAX_MESSAGES - len(path) + 2)
        if len(path) - 1 + len(below) > FORK_MAX_MESSAGES:
            raise _too_many()
        messages = path[:-1] + below
        current = _newest_leaf(path[-1], below)
    title = _("%(title)s (fork)") % {"title": chat.title or _("Chat")}
    return chat_copy_create(
        owner=user,
        title=title,
        bot=chat.bot,
        messages=[MessageCopy.of(m) for m in messages],
        current=current.pk,
    )
