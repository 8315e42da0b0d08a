"""URL map: every seed surface keeps its documented paths; a trailing slash is optional."""

from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from chats import views as chat_views
from config import views
from core.api.health import HealthView, ReadyView
from core.api.metrics import metrics_view

handler400 = "config.views.bad_request"
handler403 = "config.views.permission_denied"
handler404 = "config.views.not_found"
handler500 = "config.views.server_error"

urlpatterns = [
    re_path(r"^$", views.root, name="root"),
    re_path(r"^healthz/?$", HealthView.as_view(), name="healthz"),
    re_path(r"^readyz/?$", ReadyView.as_view(), name="readyz"),
    path("admin/", admin.site.urls),
    re_path(r"^demo/?$", chat_views.demo_page, name="demo"),
    re_path(r"^api/schema/?$", SpectacularAPIView.as_view(), name="schema"),
    re_path(r"^api/docs/?$", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    re_path(r"^api/redoc/?$", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    re_path(r"^metrics/?$", metrics_view, name="metrics"),
    path("", include("accounts.api.urls")),
    path("", include("bots.api.urls")),
    path("", include("chats.api.urls")),
    path("", include("knowledge.api.urls")),
    path("", include("exams.api.urls")),
    path("", include("tools.api.urls")),
    # Last: unknown paths get the JSON 404 even with DEBUG on (Django's debug page lists every route);
    # `[\s\S]`, not `.`, so that a path holding a newline (`%0A`) matches too.
    re_path(r"^[\s\S]*$", views.not_found, name="not-found"),
]
