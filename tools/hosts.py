"""Which hosts a bot's MCP server may be on: the operator's MCP_ALLOWED_HOSTS, and public addresses only
unless a private one is listed by name or address (docs/tools.md "Hosts", docs/reliability.md I4, I5)."""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from django.conf import settings
from django.utils.translation import gettext as _

from core.errors import DomainError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# What inet_aton also reads as an IPv4 address: 2130706433, 0x7f.1, 0177.0.0.1, 127.1 (docs/reliability.md I5).
_SECRET_PARAM = re.compile(r"key|token|secret|password|passwd|auth|credential|signature|sig$", re.IGNORECASE)
_LEGACY_IPV4 = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}\.?$")
# 64:ff9b::/96 carries an IPv4 address through a NAT64 gateway.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class HostRefused(DomainError):
    status_code = 400
    code = "mcp_host_refused"


@dataclass(frozen=True)
class Target:
    """A checked URL's host (lower case, IDNA) and port."""

    host: str
    port: int


def _entries() -> list[str]:
    entries = [entry.strip().lower().strip("[]").rstrip(".") for entry in settings.MCP_ALLOWED_HOSTS if entry.strip()]
    # `*.example.com` is read as the suffix `.example.com`.
    return [entry[1:] if entry.startswith("*.") else entry for entry in entries]


def _literal(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _effective(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 one stands for (mapped, 6to4, NAT64), else itself."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped:
            return address.ipv4_mapped
        if address.sixtofour:
            return address.sixtofour
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def address_is_public(address: IPAddress) -> bool:
    address = _effective(address)
    return address.is_global and not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_reserved
        or address.is_multicast
        or address.is_unspecified
    )


def _refused(message: str) -> HostRefused:
    return HostRefused(message)


def url_target(url: str) -> tuple[Target, bool]:
    """The URL's host and port, and whether the host is listed by its own name (not by `*` or a suffix);
    refuses a URL whose shape or host the settings do not allow, before any resolution."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise _refused(_("The URL is not valid.")) from exc
    if parts.scheme not in ("http", "https"):
        raise _refused(_("The URL must start with http:// or https://."))
    if "@" in parts.netloc:
        raise _refused(_("The URL may not carry a user name or password: send credentials as headers."))
    if any(_SECRET_PARAM.search(name) for name, _value in parse_qsl(parts.query, keep_blank_values=True)):
        # The URL is shown (API, admin) and may be logged: a secret goes in the stored, encrypted headers.
        raise _refused(_("The URL may not carry a key or token in its query: send credentials as headers."))
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise _refused(_("The URL has no host."))
    try:
        host = host.encode("idna").decode("ascii").lower()
    except UnicodeError as exc:
        raise _refused(_("The host %(host)s is not a valid name.") % {"host": host[:100]}) from exc
    if _literal(host) is None and _LEGACY_IPV4.match(host):
        raise _refused(_("The host %(host)s is not a valid name or address.") % {"host": host[:100]})
    entries = _entries()
    if not entries:
        raise _refused(
            _(
                "MCP servers are not enabled on this server: its operator lists the hosts bots may reach "
                "in the MCP_ALLOWED_HOSTS setting (the host was %(host)s)."
            )
            % {"host": host}
        )
    explicit = host in entries
    allowed = (
        explicit or "*" in entries or any(e.startswith(".") and (host.endswith(e) or host == e[1:]) for e in entries)
    )
    if not allowed:
        raise _refused(
            _(
                "The host %(host)s is not allowed: the server's operator lists the hosts bots may reach "
                "in the MCP_ALLOWED_HOSTS setting."
            )
            % {"host": host}
        )
    return Target(host=host, port=port or (443 if parts.scheme == "https" else 80)), explicit


def addresses_check(target: Target, explicit: bool, addresses: list[IPAddress]) -> None:
    """Every address the host resolves to is public, or the host or that address is listed by name."""
    if not addresses:
        raise _refused(_("The host %(host)s could not be resolved.") % {"host": target.host})
    if explicit:
        return
    listed = {literal for entry in _entries() if (literal := _literal(entry)) is not None}
    for address in addresses:
        if not address_is_public(address) and address not in listed:
            raise _refused(
                _(
                    "The host %(host)s resolves to a private, loopback or reserved address (%(address)s): "
                    "such a host is reached only if the operator lists its name or address in MCP_ALLOWED_HOSTS."
                )
                % {"host": target.host, "address": address}
            )


def _addresses(infos: list[tuple]) -> list[IPAddress]:
    found: list[IPAddress] = []
    for info in infos:
        # A scoped IPv6 address ends in `%<interface>`.
        address = _literal(str(info[4][0]).split("%", 1)[0])
        if address is not None and address not in found:
            found.append(address)
    return found


def _literal_addresses(target: Target) -> list[IPAddress] | None:
    literal = _literal(target.host)
    return None if literal is None else [literal]


def mcp_url_check(url: str) -> None:
    """Refuses (HostRefused, 400 `mcp_host_refused`) a URL a bot's MCP server may not have. Resolves the
    host: call it from sync code; async code calls `mcp_url_check_async`."""
    target, explicit = url_target(url)
    addresses = _literal_addresses(target)
    if addresses is None:
        try:
            addresses = _addresses(socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM))
        except (OSError, UnicodeError):
            addresses = []
    addresses_check(target, explicit, addresses)


async def mcp_url_check_async(url: str) -> None:
    """`mcp_url_check` for async code: the resolution does not block the event loop, and is bounded by
    MCP_CONNECT_SECONDS."""
    target, explicit = url_target(url)
    addresses = _literal_addresses(target)
    if addresses is None:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(settings.MCP_CONNECT_SECONDS):
                infos = await loop.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
            addresses = _addresses(infos)
        except (OSError, UnicodeError, TimeoutError):
            addresses = []
    addresses_check(target, explicit, addresses)
