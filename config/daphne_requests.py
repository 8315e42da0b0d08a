"""Under daphne, Twisted leaves request bodies to the application instead of parsing forms itself.

Twisted parses a POST's `multipart/form-data` or urlencoded body before daphne hands it on, and
answers one it cannot parse with an empty 400 of its own; daphne never reads what it parsed. Without
that parse, Django answers a malformed body with its JSON 400 and the body is not parsed twice.
"""

from __future__ import annotations

from daphne import http_protocol

_WebRequest = http_protocol.WebRequest


class WebRequest(_WebRequest):
    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("parsePOSTFormSubmission", False)
        super().__init__(*args, **kwargs)


def install() -> None:
    """daphne's HTTPFactory builds each request from this module attribute."""
    if http_protocol.WebRequest is _WebRequest:
        http_protocol.WebRequest = WebRequest
