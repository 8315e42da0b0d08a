"""Web origins, as a bot's allowed origins and browsers' `Origin` headers spell them."""

from __future__ import annotations

import re
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


# What a browser sends: a scheme, a host and maybe a port; no userinfo, path, query or fragment.
_ORIGIN_HEADER = re.compile(r"https?://[A-Za-z0-9.\-]+(:[0-9]{1,5})?|https?://\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")


def origin_of_header(value: str | None) -> str | None:
    """An `Origin` header's origin as origin_normalize spells it, or None for anything else
    (absent, `null`, userinfo, a path, garbage)."""
    if value is None or not _ORIGIN_HEADER.fullmatch(value):
        return None
    return origin_normalize(value)


def host_origin(host: str, scheme: str) -> str | None:
    """The origin of a request's `Host` header (`name[:port]`) under `scheme`, spelt as origin_normalize does."""
    return origin_of_header(f"{scheme}://{host}")
