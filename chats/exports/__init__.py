"""A chat as a file: Markdown and PDF (the current branch) or JSON (the whole tree); docs/export.md."""
