"""The one spelling of an e-mail address that registration, login, the admin and lookups share.

One mailbox is one account: the domain is mapped as browsers and mail servers map it (IDNA/UTS-46,
which drops soft hyphens and zero-width spaces and folds case and width) and stored in ASCII
(punycode); the local part is lower-cased in Unicode (NFKC), the same on SQLite and PostgreSQL, and
refused when it holds characters no one can see or type.
"""

from __future__ import annotations

import unicodedata

import idna
from django.utils.translation import gettext as _

from core.errors import DomainError

# Unicode's Default_Ignorable_Code_Point ranges outside the Cf category (variation selectors,
# Hangul fillers, the combining grapheme joiner...): rendered as nothing, so refused as well.
_IGNORABLE_RANGES = (
    (0x034F, 0x034F),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFFA0, 0xFFA0),
    (0xE0000, 0xE0FFF),
)


# The column's length (RFC 5321's limit on a path).
MAX_LENGTH = 254


class InvalidEmail(DomainError):
    code = "invalid_email"


def _invisible(char: str) -> bool:
    if unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
        return True
    point = ord(char)
    return any(low <= point <= high for low, high in _IGNORABLE_RANGES)


def email_normalize(raw: str) -> str:
    """`local@domain` as stored and looked up, or InvalidEmail (400) for an address that is not one."""
    value = raw.strip()
    local, at, domain = value.rpartition("@")
    if not at or not local or not domain:
        raise InvalidEmail(_("email: enter a valid email address."))
    if any(_invisible(char) or char.isspace() for char in local):
        raise InvalidEmail(
            _("email: the part before @ holds an invisible or control character; type the address again.")
        )
    # NFKC as Django normalises usernames (the admin's forms apply it), then lower case, then NFKC
    # again: idempotent over every code point, so a stored address normalises to itself.
    local = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", local).lower())
    try:
        domain = idna.encode(domain, uts46=True, transitional=False).decode("ascii")
    except idna.IDNAError as exc:
        # An address literal (`[127.0.0.1]`) or a name IDNA refuses but that is plain ASCII.
        if not (domain.isascii() and domain.isprintable() and " " not in domain):
            raise InvalidEmail(_("email: the domain after @ is not a valid domain name.")) from exc
        domain = domain.lower()
    email = f"{local}@{domain}"
    if len(email) > MAX_LENGTH:  # punycode is longer than the name it encodes
        raise InvalidEmail(_("email: the address is too long."))
    return email
