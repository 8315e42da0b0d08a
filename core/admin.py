"""What several apps' admin pages share."""

from typing import Any

from django.http import HttpRequest


class NoBulkDeleteMixin:
    """Hides Django's "delete selected" action: these rows are deleted through their own action
    (which calls the service: files, sockets) or one at a time from their page."""

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)  # type: ignore[misc]
        actions.pop("delete_selected", None)
        return actions
