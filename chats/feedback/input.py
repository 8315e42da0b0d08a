"""What a rater sends, checked the same way for every transport (REST, the 003 socket). Pure functions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext as _

from chats.models import FeedbackTag, Rating
from core.errors import DomainError
from core.text import text_problem

MAX_COMMENT_CHARS = 2000


@dataclass(frozen=True, slots=True)
class FeedbackInput:
    # None clears the message's feedback (the 003 frame's `"rating": null`).
    rating: str | None
    tags: tuple[str, ...] = ()
    comment: str = ""


def feedback_input_parse(body: dict[str, Any], *, clearable: bool = False) -> FeedbackInput:
    """`rating` ("up" or "down"; null too when `clearable`), `tags` (distinct names from FeedbackTag),
    `comment` (at most MAX_COMMENT_CHARS); else a DomainError naming the field."""
    rating = body.get("rating")
    if rating is None and clearable:
        if body.get("tags") or body.get("comment"):
            raise DomainError(_("A cleared rating (null) takes no tags and no comment."), code="invalid_feedback")
        return FeedbackInput(rating=None)
    if not isinstance(rating, str) or rating not in Rating.values:
        allowed = '"up", "down" or null' if clearable else '"up" or "down"'
        raise DomainError(_("rating must be %(allowed)s.") % {"allowed": allowed}, code="invalid_rating")
    return FeedbackInput(rating=rating, tags=_tags(body.get("tags", [])), comment=_comment(body.get("comment", "")))


def _tags(tags: Any) -> tuple[str, ...]:
    if tags is None:
        return ()
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise DomainError(_("tags must be a list of tag names (GET /feedback/tags)."), code="invalid_tags")
    unknown = [tag for tag in tags if tag not in FeedbackTag.values]
    if unknown:
        raise DomainError(
            _("Unknown tag(s): %(tags)s; the tags are listed at GET /feedback/tags.")
            % {"tags": ", ".join(tag[:40] for tag in unknown[:5])},
            code="unknown_tag",
        )
    if len(set(tags)) != len(tags):
        raise DomainError(_("tags must not repeat a tag."), code="duplicate_tags")
    return tuple(tags)


def _comment(comment: Any) -> str:
    if comment is None:
        return ""
    if not isinstance(comment, str):
        raise DomainError(_("comment must be a string."), code="invalid_comment")
    comment = comment.strip()
    if problem := text_problem(comment):
        raise DomainError(_("comment: %(problem)s") % {"problem": problem}, code="invalid_comment")
    if len(comment) > MAX_COMMENT_CHARS:
        raise DomainError(
            _("comment is too long (%(length)d characters; at most %(max)d).")
            % {"length": len(comment), "max": MAX_COMMENT_CHARS},
            code="comment_too_long",
        )
    return comment
