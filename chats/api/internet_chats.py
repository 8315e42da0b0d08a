"""The 004 surface: chats, their "conversations" (messages) and SSE inference, with or without web search."""

urlpatterns = []
