from django.urls import re_path

from config.paths import UUID
from knowledge.api import bytchat

urlpatterns = [
    re_path(rf"^bots/(?P<bot_id>{UUID})/train/?$", bytchat.BotTrainView.as_view(), name="bot-train"),
    re_path(rf"^bots/(?P<bot_id>{UUID})/documents/?$", bytchat.BotDocumentListView.as_view(), name="bot-documents"),
    re_path(
        rf"^bots/(?P<bot_id>{UUID})/documents/(?P<document_id>{UUID})/?$",
        bytchat.BotDocumentDetailView.as_view(),
        name="bot-document-detail",
    ),
]
