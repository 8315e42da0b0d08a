"""`?limit=&offset=` for list endpoints that answer with a plain JSON array, as the seeds document."""

from __future__ import annotations

from django.conf import settings
from django.db.models import QuerySet
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter

from core.errors import DomainError

# Databases take a 64-bit LIMIT and OFFSET; far past any list, and offset + limit still fits.
MAX_OFFSET = 2**31 - 1


def page_parameters(limit: str, offset: str) -> list[OpenApiParameter]:
    """The schema's `limit` and `offset` query parameters, with their bounds, for a list view's docs."""
    return [
        OpenApiParameter("limit", {"type": "integer", "minimum": 0}, description=limit),
        OpenApiParameter("offset", {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET}, description=offset),
    ]


def page_bounds(query_params) -> tuple[int, int]:
    """(limit, offset) from the query; a limit over LIST_MAX_ROWS is that many (docs/reliability.md B2), an offset
    out of 0..MAX_OFFSET a 400 naming it."""
    bounds = []
    for name, default, maximum in (("limit", settings.LIST_MAX_ROWS, None), ("offset", 0, MAX_OFFSET)):
        raw = query_params.get(name)
        if raw in (None, ""):
            bounds.append(default)
            continue
        try:
            value = int(raw)
        except ValueError:
            value = -1
        if value < 0 or (maximum is not None and value > maximum):
            message = (
                _("%(name)s must be an integer from 0 to %(maximum)s.")
                if maximum
                else _("%(name)s must be a non-negative integer.")
            )
            raise DomainError(message % {"name": name, "maximum": maximum}, code="invalid")
        bounds.append(value)
    limit, offset = bounds
    return min(limit, settings.LIST_MAX_ROWS), offset


def paginate(queryset: QuerySet, query_params) -> tuple[list, dict[str, str]]:
    """The page's rows, and headers telling the client the total (`X-Total-Count`)."""
    limit, offset = page_bounds(query_params)
    total = queryset.count()
    return list(queryset[offset : offset + limit]), {"X-Total-Count": str(total)}
