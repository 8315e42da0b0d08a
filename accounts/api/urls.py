from django.urls import re_path

from accounts.api import api_keys, tokens, usage, users

urlpatterns = [
    re_path(r"^users/?$", users.UserCreateView.as_view(), name="user-create"),
    re_path(r"^users/me/?$", users.CurrentUserView.as_view(), name="user-me"),
    re_path(r"^token/?$", tokens.TokenObtainView.as_view(), name="token"),
    re_path(r"^token/refresh/?$", tokens.TokenRefreshView.as_view(), name="token-refresh"),
    re_path(r"^token/revoke/?$", tokens.TokenRevokeView.as_view(), name="token-revoke"),
    re_path(r"^usage/?$", usage.UsageView.as_view(), name="usage"),
    re_path(r"^api-keys/?$", api_keys.ApiKeyListView.as_view(), name="api-keys"),
    re_path(r"^api-keys/(?P<key_id>[0-9]+)/?$", api_keys.ApiKeyDetailView.as_view(), name="api-key-detail"),
]
