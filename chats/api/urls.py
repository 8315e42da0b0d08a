"""Every chat surface keeps its documented paths; each module lists its own routes."""

from chats.api import bytchat, conversations, internet_chats, learnyourown, openai, runs, sessions, widget

urlpatterns = [
    *bytchat.urlpatterns,
    *conversations.urlpatterns,
    *sessions.urlpatterns,
    *internet_chats.urlpatterns,
    *learnyourown.urlpatterns,
    *widget.urlpatterns,
    *openai.urlpatterns,
    *runs.urlpatterns,
]
