"""Every chat surface keeps its documented paths; each module lists its own routes."""

from chats.api import (
    bytchat,
    conversations,
    exports,
    feedback,
    internet_chats,
    learnyourown,
    openai,
    runs,
    search,
    sessions,
    shares,
    widget,
)

urlpatterns = [
    *bytchat.urlpatterns,
    *conversations.urlpatterns,
    *sessions.urlpatterns,
    *internet_chats.urlpatterns,
    *learnyourown.urlpatterns,
    *widget.urlpatterns,
    *openai.urlpatterns,
    *runs.urlpatterns,
    *search.urlpatterns,
    *feedback.urlpatterns,
    *shares.urlpatterns,
    *exports.urlpatterns,
]
