"""What the conversation engine is asked to answer."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from bots.llm.types import ModelSpec
from chats.models import Chat, Message


@dataclass(frozen=True, slots=True)
class ReplyRequest:
    chat: Chat
    user_message: Message
    spec: ModelSpec
    system_prompt: str = ""
    temperature: float | None = None
    max_tokens: int | None = None
    # Set when the caller took a parallel-stream slot for this answer; the engine gives it back.
    slot_user_id: int | None = None
    # The knowledge bases whose passages ground the answer (the bot's, or the user's for 000).
    knowledge_base_ids: tuple[uuid.UUID, ...] = ()
