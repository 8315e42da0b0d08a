from django.urls import re_path

from core.paths import UUID
from knowledge.api import bytchat, learnyourown

urlpatterns = [
    re_path(r"^load_context/?$", learnyourown.LoadContextView.as_view(), name="load-context"),
    re_path(r"^context/?$", learnyourown.ContextView.as_view(), name="context"),
    re_path(r"^get_name/?$", learnyourown.GetNameView.as_view(), name="get-name"),
    re_path(r"^get_documents/?$", learnyourown.GetDocumentsView.as_view(), name="get-documents"),
    re_path(r"^delete_name/?$", learnyourown.DeleteNameView.as_view(), name="delete-name"),
    re_path(rf"^bots/(?P<bot_id>{UUID})/train/?$", bytchat.BotTrainView.as_view(), name="bot-train"),
    re_path(rf"^bots/(?P<bot_id>{UUID})/documents/?$", bytchat.BotDocumentListView.as_view(), name="bot-documents"),
    re_path(
        rf"^bots/(?P<bot_id>{UUID})/documents/(?P<document_id>{UUID})/?$",
        bytchat.BotDocumentDetailView.as_view(),
        name="bot-document-detail",
    ),
]
