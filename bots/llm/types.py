"""Typed values that cross the provider boundary."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True, slots=True)
class ToolCallRequest:
    """A tool call the model asked for: its id, the tool's name and the arguments as the model wrote them (JSON)."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool offered to the model: a name it calls it by, what it does, and its JSON Schema."""

    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: Role
    content: str
    # An assistant turn that asked for tools, and a tool turn's answer to one of them.
    tool_calls: tuple[ToolCallRequest, ...] = ()
    tool_call_id: str = ""


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """Which provider and model answer; `source` says why (bot config or platform default)."""

    provider: str
    model: str
    source: str = "default"

    @property
    def task_type(self) -> str:
        """The bot config's task type this model answers for (`bot:<task type>`), else `default`."""
        return self.source.removeprefix("bot:") if self.source.startswith("bot:") else "default"


@dataclass(frozen=True, slots=True)
class CompletionRequest:
    model: str
    messages: tuple[ChatMessage, ...]
    temperature: float | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    # The event loop's time by which the answer must be over, when sooner than the provider's own
    # limit: the time left to a failover (chats/streaming.py).
    deadline: float | None = None
    # Tools the model may ask for (providers that cannot call tools ignore them).
    tools: tuple[ToolSpec, ...] = ()


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    estimated: bool = False

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @classmethod
    def estimate(cls, prompt: Iterable[str], completion: str) -> Usage:
        """What a call cost when the provider sent no usage figures: estimated from the text."""
        return cls(
            prompt_tokens=sum(estimate_tokens(text) for text in prompt),
            completion_tokens=estimate_tokens(completion),
            estimated=True,
        )

    def __add__(self, other: Usage) -> Usage:
        """Several calls behind one answer (autocontinue) cost their sum; estimated if any part was."""
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            estimated=self.estimated or other.estimated,
        )


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class StreamEnd:
    """The last item of every successful stream: what answered, why it stopped, what it cost."""

    model: str
    finish_reason: str
    usage: Usage
    # The tools the model asked for, when it stopped to call them (finish_reason "tool_calls").
    tool_calls: tuple[ToolCallRequest, ...] = ()


StreamItem = TextDelta | StreamEnd


@dataclass(slots=True)
class Completion:
    text: str
    model: str
    finish_reason: str
    usage: Usage
    deltas: list[str] = field(default_factory=list)


def estimate_tokens(text: str) -> int:
    """About four characters a token, the usual rule of thumb for English text."""
    return max(1, (len(text) + 3) // 4) if text else 0
