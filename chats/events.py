"""Stream events and their encoders for each transport; transports never build payloads by hand."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from bots.llm.types import ModelSpec

# `snapshot`: the answer's whole text so far, standing in for events a resuming reader can no longer
# get (docs/runs.md); a client replaces what it has with it.
EventType = Literal["chunk", "snapshot", "done", "error"]


@dataclass(frozen=True, slots=True)
class StreamEvent:
    type: EventType
    content: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    status_code: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    # The model writing the answer (after a failover, not the one chosen), for surfaces that report
    # it before `done` (X-Bytchat-Model, /v1 `model`); never encoded into the event itself.
    answered_by: ModelSpec | None = None

    @classmethod
    def chunk(cls, text: str, *, answered_by: ModelSpec | None = None) -> StreamEvent:
        return cls("chunk", text, answered_by=answered_by)

    @classmethod
    def done(cls, text: str, *, answered_by: ModelSpec | None = None, **data: Any) -> StreamEvent:
        return cls("done", text, data, answered_by=answered_by)

    @classmethod
    def error(cls, message: str, *, code: str, status_code: int, headers: dict[str, str] | None = None) -> StreamEvent:
        return cls("error", message, {"code": code}, status_code, headers or {})

    def payload(self) -> dict[str, Any]:
        if self.type == "error":
            return {"detail": self.content, **self.data}
        return {"content": self.content, **self.data}

    def to_sse(self, run_id: str | None = None, seq: int = 0) -> bytes:
        """One SSE event; a run's events name the run and their position in an `id:` line, which a
        browser's EventSource sends back as Last-Event-ID when it reconnects."""
        if run_id is None:
            body = json.dumps(self.payload(), ensure_ascii=False, separators=(",", ":"))
            return f"event: {self.type}\ndata: {body}\n\n".encode()
        body = json.dumps({**self.payload(), "run_id": run_id, "seq": seq}, ensure_ascii=False, separators=(",", ":"))
        return f"id: {run_id}:{seq}\nevent: {self.type}\ndata: {body}\n\n".encode()

    def to_text(self) -> bytes:
        """Plain-text streams carry the answer itself; a failure ends them with one marked line."""
        if self.type in ("chunk", "snapshot"):
            return self.content.encode()
        if self.type == "error":
            return f"\n\n[error] {self.content}\n".encode()
        return b""

    def to_ws(self) -> dict[str, Any]:
        if self.type == "error":
            return {"type": "error", "content": self.content, **self.data}
        return {"type": self.type, "content": self.content, **self.data}
