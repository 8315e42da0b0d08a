"""Feedback on answers: a rating, tags from a fixed list and a comment, one per assistant message (docs/feedback.md)."""
