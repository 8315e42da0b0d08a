"""Reads on feedback: the message a caller may rate, its feedback, and the export rows (docs/feedback.md)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from django.db.models import Count, Q, QuerySet
from django.utils.translation import gettext as _

from accounts.models import User
from chats.models import Chat, Feedback, Message, MessageStatus, Rating, Role
from chats.visitors import Visitor, key_digest
from core.errors import NotFound

# Feedback rows read per query when exporting: memory stays bounded whatever the table's size.
EXPORT_CHUNK = 500


class MessageNotFound(NotFound):
    code = "message_not_found"

    def default_message(self) -> str:
        return _("Message not found.")


class FeedbackNotFound(NotFound):
    code = "feedback_not_found"

    def default_message(self) -> str:
        return _("This message has no feedback.")


def feedback_message_get(
    *,
    message_id: uuid.UUID | str,
    user: User | None = None,
    visitor: Visitor | None = None,
    chat: Chat | None = None,
) -> Message:
    """The message with its chat and feedback, if the caller may rate it: a message of one of `user`'s
    chats (never a visitor's chat of their bot), of one of `visitor`'s chats with their bot while it is
    public under the key the token names, or of `chat` (a socket's session, already the caller's).
    Any other message is a 404, the same as a missing one. One query."""
    messages = Message.objects.filter(pk=message_id).select_related("chat__bot", "feedback")
    if chat is not None:
        messages = messages.filter(chat=chat)
    elif visitor is not None:
        messages = messages.filter(
            chat__visitor_id=visitor.id,
            chat__bot_id=visitor.bot_id,
            chat__bot__public=True,
            chat__owner__is_active=True,
        )
    elif user is not None:
        messages = messages.filter(chat__in=Chat.objects.owned_by(user))
    else:
        raise MessageNotFound()
    message = messages.first()
    if message is None:
        raise MessageNotFound()
    if visitor is not None and key_digest(message.chat.bot.public_key) != visitor.key_digest:
        raise MessageNotFound()  # the bot's key changed since the token was issued
    return message


def feedback_of(message: Message) -> Feedback | None:
    """The message's feedback, read with it by `feedback_message_get` (no query then)."""
    return getattr(message, "feedback", None)


def feedback_get(*, message: Message) -> Feedback:
    feedback = feedback_of(message)
    if feedback is None:
        raise FeedbackNotFound()
    return feedback


def feedback_by_message(*, message_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Feedback]:
    """The feedback of these messages, by message id (one query); the caller scoped the messages."""
    ids = list(message_ids)
    if not ids:
        return {}
    return {feedback.message_id: feedback for feedback in Feedback.objects.filter(message_id__in=ids)}


# -- export ----------------------------------------------------------------------------------------


def feedback_list(
    *, bot_id: uuid.UUID | str | None = None, rating: str | None = None, since: datetime | None = None
) -> QuerySet[Feedback]:
    """Every rater's feedback (for staff: the admin, the export command), narrowed by bot, rating or date."""
    feedbacks = Feedback.objects.all()
    if bot_id is not None:
        feedbacks = feedbacks.filter(bot_id=bot_id)
    if rating is not None:
        feedbacks = feedbacks.filter(rating=rating)
    if since is not None:
        feedbacks = feedbacks.filter(created_at__gte=since)
    return feedbacks


def feedback_export_rows(
    *, feedbacks: QuerySet[Feedback] | None = None, chunk_size: int = EXPORT_CHUNK
) -> Iterator[dict[str, Any]]:
    """One row per feedback, oldest first, read `chunk_size` at a time (two queries a chunk): the rated
    answer and its question, and where the question has another answer (a regenerated branch), the pair
    `preferred` / `rejected` (`_sibling_for` says which sibling)."""
    feedbacks = Feedback.objects.all() if feedbacks is None else feedbacks
    feedbacks = feedbacks.select_related("message__parent").order_by("created_at", "pk")
    after: Feedback | None = None
    while True:
        page = feedbacks
        if after is not None:
            page = page.filter(Q(created_at__gt=after.created_at) | Q(created_at=after.created_at, pk__gt=after.pk))
        chunk = list(page[:chunk_size])
        if not chunk:
            return
        siblings = _answers_by_question(chunk)
        for feedback in chunk:
            yield _row(feedback, siblings.get(feedback.message.parent_id, []))
        if len(chunk) < chunk_size:
            return
        after = chunk[-1]


def _answers_by_question(chunk: list[Feedback]) -> dict[uuid.UUID, list[Message]]:
    """The finished, non-empty answers to the chunk's questions, with their feedback (one query)."""
    questions = {feedback.message.parent_id for feedback in chunk if feedback.message.parent_id is not None}
    if not questions:
        return {}
    answers = (
        Message.objects.filter(parent_id__in=questions, role=Role.ASSISTANT, status=MessageStatus.COMPLETE)
        .exclude(content="")
        .select_related("feedback")
    )
    grouped: dict[uuid.UUID, list[Message]] = defaultdict(list)
    for answer in answers:
        grouped[answer.parent_id].append(answer)
    return grouped


def _sibling_for(feedback: Feedback, answers: list[Message]) -> Message | None:
    """Another answer to the same question: the newest one rated the other way, else the newest one."""
    others = [answer for answer in answers if answer.pk != feedback.message_id]
    opposite = [answer for answer in others if (rated := feedback_of(answer)) and rated.rating != feedback.rating]
    candidates = opposite or others
    if not candidates:
        return None
    return max(candidates, key=lambda answer: (answer.created_at, str(answer.pk)))


def _row(feedback: Feedback, answers: list[Message]) -> dict[str, Any]:
    message = feedback.message
    question = message.parent.content if message.parent is not None and message.parent.role == Role.USER else ""
    row: dict[str, Any] = {
        "feedback_id": str(feedback.pk),
        "message_id": str(message.pk),
        "chat_id": str(message.chat_id),
        "bot_id": str(feedback.bot_id) if feedback.bot_id else None,
        "model": feedback.model,
        "task_type": feedback.task_type,
        "rating": feedback.rating,
        "tags": list(feedback.tags),
        "comment": feedback.comment,
        "question": question,
        "answer": message.content,
        "created_at": feedback.created_at.isoformat(),
    }
    sibling = _sibling_for(feedback, answers)
    if sibling is not None:
        liked = feedback.rating == Rating.UP
        row["preferred"] = message.content if liked else sibling.content
        row["rejected"] = sibling.content if liked else message.content
    return row


def feedback_summary(*, feedbacks: QuerySet[Feedback] | None = None) -> list[dict[str, Any]]:
    """Counts of up and down ratings per (bot, model, task type), the most rated first (one query)."""
    feedbacks = Feedback.objects.all() if feedbacks is None else feedbacks
    return list(
        feedbacks.values("bot_id", "bot__name", "model", "task_type")
        .annotate(
            up=Count("pk", filter=Q(rating=Rating.UP)),
            down=Count("pk", filter=Q(rating=Rating.DOWN)),
            total=Count("pk"),
        )
        .order_by("-total", "bot__name", "model", "task_type")
    )
