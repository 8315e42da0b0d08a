"""The 002 surface: conversations with a message tree."""

urlpatterns = []
