"""The tools admin: a server's credentials are never shown; a tool's policy is the one thing staff change."""

import pytest
from django.test import Client
from django.urls import reverse

from tools.models import Tool, ToolPolicy, ToolServer
from tools.secrets import credentials_encrypt

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(make_user) -> Client:
    client = Client()
    client.force_login(make_user("root@example.com", is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def server(bot) -> ToolServer:
    credentials = credentials_encrypt({"Authorization": "Bearer admin-page-secret"})
    url = "https://mcp.example.com/mcp"
    server = ToolServer.objects.create(bot=bot, name="weather", url=url, credentials=credentials)
    Tool.objects.create(bot=bot, server=server, name="forecast", description="Tomorrow's weather.")
    return server


def test_the_server_pages_show_that_there_are_credentials_and_never_them(staff, server):
    pages = [
        staff.get(reverse("admin:tools_toolserver_changelist")),
        staff.get(reverse("admin:tools_toolserver_change", args=[server.pk])),
    ]
    for page in pages:
        text = page.content.decode()
        assert page.status_code == 200
        assert "admin-page-secret" not in text and server.credentials not in text
    assert "has credentials" in pages[0].content.decode().lower()
    assert "forecast" in pages[1].content.decode()


def test_staff_set_a_tools_policy(staff, server):
    tool = Tool.objects.get()
    form = {"policy": "deny"}
    response = staff.post(reverse("admin:tools_tool_change", args=[tool.pk]), form)
    assert response.status_code == 302
    tool.refresh_from_db()
    assert tool.policy == ToolPolicy.DENY
