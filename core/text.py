"""Text no surface stores: NUL characters and lone surrogates, refused by DRF's own CharField validators."""

from __future__ import annotations

from rest_framework import serializers

# The validators every serializer CharField runs (ProhibitNullCharacters, ProhibitSurrogateCharacters),
# for text that arrives outside a CharField: /v1 message parts, socket frames.
_TEXT = serializers.CharField(allow_blank=True, trim_whitespace=False)


def text_problem(value: str) -> str | None:
    """Why `value` cannot be stored as text, in the words every other surface uses; None if it can."""
    try:
        _TEXT.run_validation(value)
    except serializers.ValidationError as exc:
        return str(exc.detail[0])
    return None
