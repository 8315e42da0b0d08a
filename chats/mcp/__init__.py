"""Bytchat as an MCP server at `/mcp`: the caller's bots and knowledge bases as tools (docs/api-mcp.md)."""
