"""The chat-session WebSocket: handshake, consumer, frames, fan-out groups, limits and tickets."""
