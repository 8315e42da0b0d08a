"""The MCP servers' credentials (a JSON object of headers), encrypted at rest with Fernet.

The key is MCP_SECRETS_KEY, or else one derived from SECRET_KEY (HKDF-SHA256): rotating SECRET_KEY
without setting MCP_SECRETS_KEY to the old derived key makes the stored credentials unreadable, and
such a server then reports `mcp_credentials_unreadable` until its owner attaches it again.
"""

from __future__ import annotations

import base64
import json
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext as _

from core.errors import DomainError

_HKDF_INFO = b"bytchat:tools:mcp-credentials"


class CredentialsUnreadable(DomainError):
    status_code = 409
    code = "mcp_credentials_unreadable"

    def default_message(self) -> str:
        return _(
            "This tool server's stored credentials cannot be read (the server's secret key changed): "
            "attach the server again with its credentials."
        )


@lru_cache(maxsize=4)
def _fernet(configured_key: str, secret_key: str) -> Fernet:
    if configured_key:
        try:
            return Fernet(configured_key)
        except ValueError as exc:
            raise ImproperlyConfigured("MCP_SECRETS_KEY must be a Fernet key: urlsafe base64 of 32 bytes.") from exc
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(derived))


def fernet() -> Fernet:
    return _fernet(settings.MCP_SECRETS_KEY, settings.SECRET_KEY)


def credentials_encrypt(headers: dict[str, str]) -> str:
    """The headers as a Fernet token; no headers is the empty string."""
    if not headers:
        return ""
    return fernet().encrypt(json.dumps(headers, separators=(",", ":")).encode()).decode("ascii")


def credentials_decrypt(token: str) -> dict[str, str]:
    """The headers a token holds; CredentialsUnreadable if the key that wrote it is gone."""
    if not token:
        return {}
    try:
        headers = json.loads(fernet().decrypt(token.encode("ascii")))
    except (InvalidToken, ValueError) as exc:
        raise CredentialsUnreadable() from exc
    if not isinstance(headers, dict):
        raise CredentialsUnreadable()
    return {str(name): str(value) for name, value in headers.items()}
