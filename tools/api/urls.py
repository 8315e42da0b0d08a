from django.urls import re_path

from core.paths import UUID
from tools.api import tool_servers

BOT = rf"^bots/(?P<bot_id>{UUID})"

urlpatterns = [
    re_path(rf"{BOT}/tool-servers/?$", tool_servers.ToolServerListCreateView.as_view(), name="tool-server-list"),
    re_path(
        rf"{BOT}/tool-servers/(?P<server_id>{UUID})/?$",
        tool_servers.ToolServerDetailView.as_view(),
        name="tool-server-detail",
    ),
    re_path(
        rf"{BOT}/tool-servers/(?P<server_id>{UUID})/refresh/?$",
        tool_servers.ToolServerRefreshView.as_view(),
        name="tool-server-refresh",
    ),
    re_path(rf"{BOT}/tools/?$", tool_servers.ToolListView.as_view(), name="tool-list"),
    re_path(rf"{BOT}/tools/(?P<tool_id>{UUID})/?$", tool_servers.ToolDetailView.as_view(), name="tool-detail"),
]
