"""The tools' input and output JSON Schemas, as `tools/list` shows them (bounded like every other surface)."""

from __future__ import annotations

from typing import Any

from django.conf import settings

SEARCH_LIMIT_DEFAULT, SEARCH_LIMIT_MAX = 5, 20

_CITATION = {
    "type": "object",
    "properties": {
        "document_id": {"type": "string"},
        "filename": {"type": "string"},
        "page": {"type": ["integer", "null"]},
        "excerpt": {"type": "string"},
    },
    "required": ["document_id", "filename", "page", "excerpt"],
}


def ask_input() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "question": {
                "type": "string",
                "minLength": 1,
                "maxLength": settings.CHAT_MAX_QUERY_CHARS,
                "description": "The question for the bot.",
            }
        },
        "required": ["question"],
        "additionalProperties": False,
    }


def ask_output() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "answer": {"type": "string"},
            "citations": {"type": "array", "items": _CITATION},
            "model": {"type": "string"},
        },
        "required": ["answer", "citations", "model"],
    }


def search_input() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "query": {
                "type": "string",
                "minLength": 1,
                "maxLength": settings.CHAT_MAX_QUERY_CHARS,
                "description": "What to look for.",
            },
            "limit": {
                "type": "integer",
                "minimum": 1,
                "maximum": SEARCH_LIMIT_MAX,
                "default": SEARCH_LIMIT_DEFAULT,
                "description": "How many passages, best first.",
            },
        },
        "required": ["query"],
        "additionalProperties": False,
    }


def search_output() -> dict[str, Any]:
    passage = {
        "type": "object",
        "properties": {**_CITATION["properties"], "score": {"type": "number"}},
        "required": [*_CITATION["required"], "score"],
    }
    return {
        "type": "object",
        "properties": {"passages": {"type": "array", "items": passage}},
        "required": ["passages"],
    }
