from django.urls import re_path

from chats.api import bytchat
from config.paths import UUID

urlpatterns = [
    re_path(rf"^chat/(?P<bot_id>{UUID})/?$", bytchat.bot_chat, name="bot-chat"),
]
