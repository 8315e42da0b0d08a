"""`?limit=&offset=` for list endpoints that answer with a plain JSON array, as the seeds document."""

from __future__ import annotations

from django.conf import settings
from django.db.models import QuerySet
from django.utils.translation import gettext as _

from config.errors import DomainError


def page_bounds(query_params) -> tuple[int, int]:
    """(limit, offset) from the query; the limit is at most LIST_MAX_ROWS (RELIABILITY B2)."""
    bounds = []
    for name, default in (("limit", settings.LIST_MAX_ROWS), ("offset", 0)):
        raw = query_params.get(name)
        if raw in (None, ""):
            bounds.append(default)
            continue
        try:
            value = int(raw)
        except ValueError:
            value = -1
        if value < 0:
            raise DomainError(_("%(name)s must be a non-negative integer.") % {"name": name}, code="invalid")
        bounds.append(value)
    limit, offset = bounds
    return min(limit, settings.LIST_MAX_ROWS), offset


def paginate(queryset: QuerySet, query_params) -> tuple[list, dict[str, str]]:
    """The page's rows, and headers telling the client the total (`X-Total-Count`)."""
    limit, offset = page_bounds(query_params)
    total = queryset.count()
    return list(queryset[offset : offset + limit]), {"X-Total-Count": str(total)}
