from django.urls import re_path

from bots.api import bots, openai_models
from core.paths import UUID

urlpatterns = [
    re_path(r"^v1/embeddings/?$", openai_models.EmbeddingsView.as_view(), name="openai-embeddings"),
    re_path(r"^v1/models/?$", openai_models.ModelListView.as_view(), name="openai-models"),
    re_path(r"^v1/models/(?P<model>[^/]{1,200})/?$", openai_models.ModelDetailView.as_view(), name="openai-model"),
    re_path(r"^bots/?$", bots.BotListCreateView.as_view(), name="bot-list"),
    re_path(rf"^bots/(?P<bot_id>{UUID})/?$", bots.BotDetailView.as_view(), name="bot-detail"),
    re_path(rf"^bots/(?P<bot_id>{UUID})/widget/?$", bots.BotWidgetView.as_view(), name="bot-widget"),
    re_path(rf"^bots/(?P<bot_id>{UUID})/models/?$", bots.BotModelListCreateView.as_view(), name="bot-models"),
    re_path(
        rf"^bots/(?P<bot_id>{UUID})/models/(?P<config_id>[0-9]+)/?$",
        bots.BotModelDetailView.as_view(),
        name="bot-model-detail",
    ),
]
