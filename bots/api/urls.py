from django.urls import re_path

from bots.api import bots
from config.paths import UUID

urlpatterns = [
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
