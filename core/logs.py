"""Log records as one JSON object a line (LOG_FORMAT=json) or as text (plain), with the ids that lead from a
line to its request, its run and its trace (docs/reliability.md L4).

The request's id is set by config/request_log.py for each HTTP request and WebSocket connection, the run's by
chats/runs/log_line.py for the task that writes it; both are context variables, so every line logged while
serving them (in the event loop or in a thread that `sync_to_async` runs) carries them. The trace's ids come
from core/tracing.py: none with tracing off.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import json
import logging
import logging.config
import threading
import uuid
from contextvars import ContextVar
from pathlib import PurePath
from typing import Any

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
run_id_var: ContextVar[str | None] = ContextVar("run_id", default=None)

# What every LogRecord has; anything else on a record came from `extra=`.
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}
_AS_IS = (str, int, float, bool, type(None), list, tuple, dict)
_AS_TEXT = (uuid.UUID, datetime.date, datetime.time, decimal.Decimal, enum.Enum, PurePath)


def configure_logging(config: dict[str, Any]) -> None:
    """settings.LOGGING_CONFIG: the LOGGING dictionary, and what would otherwise print its own text to stderr
    through ours too (Python's warnings, exceptions that end a thread), so every line is one record."""
    logging.config.dictConfig(config)
    logging.captureWarnings(True)
    threading.excepthook = _log_thread_exception


def _log_thread_exception(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread is not None else "?"
    exc_info = (args.exc_type, args.exc_value, args.exc_traceback)
    logging.getLogger("threading").error("exception in thread %s", name, exc_info=exc_info)  # type: ignore[arg-type]


def context_ids() -> dict[str, str]:
    """The ids known where the record is made: request, run, and the current span's trace and span."""
    ids = {}
    request_id = request_id_var.get()
    if request_id is not None:
        ids["request_id"] = request_id
    run_id = run_id_var.get()
    if run_id is not None:
        ids["run_id"] = run_id
    trace_ids = _current_trace_ids()
    if trace_ids is not None:
        ids["trace_id"], ids["span_id"] = trace_ids
    return ids


def _current_trace_ids() -> tuple[str, str] | None:
    # Imported when first needed: this module is loaded while Django configures logging, before core.tracing may be.
    from core.tracing import current_trace_ids

    return current_trace_ids()


def _structured(record: logging.LogRecord) -> dict[str, Any]:
    """The record's `extra=` fields that are data. Objects are left out: Django's `request` would print its
    full path, query string (and the tokens it may hold) included."""
    fields = {}
    for key, value in vars(record).items():
        if key in _RECORD_FIELDS or key.startswith("_"):
            continue
        if isinstance(value, _AS_TEXT):
            fields[key] = str(value.value if isinstance(value, enum.Enum) else value)
        elif isinstance(value, _AS_IS):
            fields[key] = value
    return fields


class JsonFormatter(logging.Formatter):
    """`time` (ISO 8601, UTC), `level`, `logger`, `message`, the `extra=` fields, the context's ids, and
    `exception` (the whole traceback, one string) when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        created = datetime.datetime.fromtimestamp(record.created, datetime.UTC)
        entry = {
            "time": created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in [*_structured(record).items(), *context_ids().items()]:
            entry.setdefault(key, value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str)


class PlainFormatter(logging.Formatter):
    """`time level logger: message [request_id=… run_id=…]`, then the traceback, for a person at a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        ids = context_ids()
        ids.pop("span_id", None)
        line = super().formatMessage(record)
        return f"{line} [{' '.join(f'{key}={value}' for key, value in ids.items())}]" if ids else line
