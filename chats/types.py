"""What the conversation engine is asked to answer."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from accounts.quotas import QuotaCharge
from bots.llm.types import ModelSpec
from chats.models import Chat, Message, Run


@dataclass(frozen=True, slots=True)
class TurnLease:
    """What a turn holds while it answers: one of the user's stream slots (taken for the run `run_id`)
    and the quota charge of its first model call (given back if the model never answers). The chat's
    answer lock is the run itself (one running run per chat)."""

    user_id: int
    run_id: uuid.UUID = field(default_factory=uuid.uuid4)
    charge: QuotaCharge | None = None
    # Whose stream slot: the user's, or a widget visitor's ("visitor:<id>") answered on the owner's quota.
    stream_holder: int | str | None = None

    @property
    def holder(self) -> int | str:
        return self.user_id if self.stream_holder is None else self.stream_holder


@dataclass(frozen=True, slots=True)
class ReplyRequest:
    chat: Chat
    user_message: Message
    spec: ModelSpec
    # Tried in turn if `spec` fails before its first token (bots/routing.py failover_specs).
    fallbacks: tuple[ModelSpec, ...] = ()
    # The surface asking, which the model calls are recorded under (not always the one that made the chat).
    surface: str = ""
    system_prompt: str = ""
    temperature: float | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    # Given back by the run when the answer ends, however it ends.
    lease: TurnLease | None = None
    # The knowledge bases whose passages ground the answer; None means every base of the chat's owner.
    knowledge_base_ids: tuple[uuid.UUID, ...] | None = ()
    # Keep generating while the model stops for length, up to CHAT_AUTOCONTINUE_MAX more calls (002).
    autocontinue: bool = False
    # Ground the answer in web search results as well (004 `inference_internet`).
    web_search: bool = False
    # The answer's run (its message exists from the start, status `streaming`).
    run: Run | None = None
    # A run taken over after its process died while it waited for a tool approval (chats/runs/resume.py):
    # its tool calls so far are read back, and each model call is charged against `quota_basis`.
    resumed: bool = False
    quota_basis: QuotaCharge | None = None
