"""What a message search asks for and what it finds."""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SearchFilters:
    """Which of the owner's messages a search looks at. Widget visitors' chats (of the owner's bots) and
    the records of /v1 and /mcp calls are left out unless asked for."""

    bot_id: uuid.UUID | None = None
    surface: str | None = None
    role: str | None = None
    since: datetime.datetime | None = None
    until: datetime.datetime | None = None
    include_visitors: bool = False
    include_api: bool = False


@dataclass(frozen=True, slots=True)
class SearchHit:
    message_id: uuid.UUID
    chat_id: uuid.UUID
    chat_title: str
    bot_id: uuid.UUID | None
    surface: str
    role: str
    visitor: bool
    snippet: str
    created_at: datetime.datetime
    score: float


# (search entry id, score), best first.
Ranking = list[tuple[int, float]]
