"""The 003 surface: chat sessions with business context, answered over WebSocket."""

urlpatterns = []
