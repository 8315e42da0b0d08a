"""Giving the database connection back before a long wait, in sync code (async code uses `chats.streaming.released`)."""

from django.db import connection


def database_connection_release() -> None:
    """Close this thread's connection before waiting on a model or a child process, so a slow
    request holds none while it waits; the next query opens another. Inside a transaction
    (tests, or a caller's atomic block) the connection is kept: closing it would end the transaction."""
    if not connection.in_atomic_block:
        connection.close()
