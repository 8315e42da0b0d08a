"""Tool names: stable, valid for MCP and OpenAI tool names (`[a-zA-Z0-9_-]`, at most 64 characters)."""

from __future__ import annotations

import re
import unicodedata
import uuid

MAX_NAME_CHARS = 64
# Room for the prefix (`search_`, 7), the slug, `_` and the id's 8 hex digits: 56 at most.
SLUG_CHARS = 40
_NOT_WORD = re.compile(r"[^a-z0-9]+")


def slug(text: str) -> str:
    """`Café Zafiro!` -> `cafe_zafiro`: accents folded to ASCII, anything else one underscore."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return _NOT_WORD.sub("_", folded).strip("_")[:SLUG_CHARS].rstrip("_")


def tool_name(prefix: str, label: str, object_id: uuid.UUID) -> str:
    """`<prefix>_<slug of label>_<8 hex of the id>`: renaming changes the slug; the id keeps two alike apart."""
    parts = [prefix, slug(label), object_id.hex[:8]]
    return "_".join(part for part in parts if part)[:MAX_NAME_CHARS]
