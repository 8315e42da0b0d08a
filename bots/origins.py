"""Web origins, as a bot's allowed origins and browsers' `Origin` headers spell them."""

from __future__ import annotations

from urllib.parse import urlsplit


def origin_normalize(value: object) -> str | None:
    """`scheme://host[:port]` in lower case for an http(s) origin with nothing after it; else None."""
    if not isinstance(value, str) or len(value) > 300:
        return None
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return None
    default = {"http": 80, "https": 443}[parts.scheme]
    host = parts.hostname
    if ":" in host:
        host = f"[{host}]"
    else:
        try:  # browsers send internationalised names in punycode
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")
