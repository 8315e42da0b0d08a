"""Writes on feedback: rate an answer (again: replace), clear its rating (docs/feedback.md)."""

from __future__ import annotations

from collections.abc import Sequence

from django.utils.translation import gettext as _

from chats.feedback.input import feedback_input_parse
from chats.models import Feedback, Message, Role
from core.errors import DomainError


def feedback_set(*, message: Message, rating: str, tags: Sequence[str] = (), comment: str = "") -> Feedback:
    """The message's one feedback, made or replaced whole (tags and comment not sent are cleared). Bot,
    model and task type are copied from the chat and the answer now, so that they outlive later changes.
    The caller checked the rater may see the message (chats.feedback.selectors.feedback_message_get)."""
    checked = feedback_input_parse({"rating": rating, "tags": list(tags), "comment": comment})
    if message.role != Role.ASSISTANT:
        raise DomainError(
            _("Only assistant messages can be rated; message %(id)s is a “%(role)s” message.")
            % {"id": message.pk, "role": message.role},
            code="not_an_answer",
        )
    chat = message.chat
    feedback, _created = Feedback.objects.update_or_create(
        message=message,
        defaults={
            "owner_id": chat.owner_id,
            "visitor_id": chat.visitor_id,
            "bot_id": chat.bot_id,
            "model": message.model,
            "task_type": message.task_type,
            "rating": checked.rating,
            "tags": list(checked.tags),
            "comment": checked.comment,
        },
    )
    message.feedback = feedback
    return feedback


def feedback_delete(*, message: Message) -> bool:
    """Clear the message's feedback; False when it had none."""
    deleted, _by_model = Feedback.objects.filter(message=message).delete()
    return deleted > 0
