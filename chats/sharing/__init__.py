"""Share links (a read-only snapshot of a chat, public by token) and forks: both make chats from copied messages."""
