"""The SQL condition on a search entry (`s`) for an owner and the search's filters."""

from __future__ import annotations

from typing import Any

from django.db import connection

from chats.models import Surface
from chats.search.types import SearchFilters

API_SURFACES = (Surface.OPENAI.value, Surface.MCP.value)


def entry_condition(owner_id: int, filters: SearchFilters, alias: str = "s") -> tuple[str, list[Any]]:
    sqlite = connection.vendor == "sqlite"
    clauses, params = [f"{alias}.owner_id = %s"], [owner_id]
    if not filters.include_visitors:
        clauses.append(f"NOT {alias}.visitor")
    if not filters.include_api and filters.surface not in API_SURFACES:
        clauses.append(f"{alias}.surface NOT IN (%s, %s)")
        params.extend(API_SURFACES)
    if filters.bot_id is not None:
        clauses.append(f"{alias}.bot_id = %s")
        params.append(filters.bot_id.hex if sqlite else filters.bot_id)
    if filters.surface is not None:
        clauses.append(f"{alias}.surface = %s")
        params.append(filters.surface)
    if filters.role is not None:
        clauses.append(f"{alias}.role = %s")
        params.append(filters.role)
    for column, operator, value in (("created_at", ">=", filters.since), ("created_at", "<", filters.until)):
        if value is not None:
            clauses.append(f"{alias}.{column} {operator} %s")
            params.append(connection.ops.adapt_datetimefield_value(value))
    return " AND ".join(clauses), params
