"""The provider protocol every chat surface calls."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from bots.llm.types import Completion, CompletionRequest, StreamEnd, StreamItem, TextDelta


class Provider(Protocol):
    name: str

    def astream(self, request: CompletionRequest) -> AsyncIterator[StreamItem]:
        """Text deltas as they arrive, then exactly one StreamEnd; raises ProviderError on failure."""
        ...


async def complete(
    provider: Provider, request: CompletionRequest, *, surface: str = "", task_type: str = ""
) -> Completion:
    """Run a stream to its end and return the whole answer (measured as every call is: bots/llm/observed.py)."""
    from bots.llm.observed import observed_stream

    deltas: list[str] = []
    async for item in observed_stream(provider, request, surface=surface, task_type=task_type):
        if isinstance(item, TextDelta):
            deltas.append(item.text)
        elif isinstance(item, StreamEnd):
            return Completion(
                text="".join(deltas),
                model=item.model,
                finish_reason=item.finish_reason,
                usage=item.usage,
                deltas=deltas,
            )
    raise RuntimeError("provider stream ended without StreamEnd")
