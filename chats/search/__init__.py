"""Search over a user's own messages, every surface's chats together (docs/search.md)."""
