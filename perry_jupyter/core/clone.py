"""Clone sources: credentials in a URL are handed to git for the clone only and never shown."""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit, urlunsplit

# Schemes whose userinfo git hands to curl as a login: a password, or a token as the user name.
CREDENTIAL_SCHEMES = ("http", "https", "ftp", "ftps")
# An SSH URL's user name is a login, not a secret (its password, if someone writes one, is).
_SSH_SCHEMES = ("ssh", "git+ssh", "ssh+git")
# Greedy up to the last "@" before the path, so a password holding a raw "@" is hidden whole.
_USERINFO = re.compile(r"\b([a-z][a-z0-9+.-]*)://([^/?#\s]+)@", re.IGNORECASE)

REDACTED = "***"


def redact(text: str) -> str:
    """``text`` with the userinfo of every URL in it replaced by ``***``."""

    def hide(m: re.Match) -> str:
        scheme, userinfo = m.group(1), m.group(2)
        if scheme.lower() in _SSH_SCHEMES and ":" not in userinfo:
            return m.group(0)
        return f"{scheme}://{REDACTED}@"

    return _USERINFO.sub(hide, text)


def split_credentials(url: str) -> tuple[str, str | None, str | None]:
    """(the URL without userinfo, user name, password) of an http(s)/ftp(s) URL, decoded as git
    would; other URLs come back whole, with no credential."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in CREDENTIAL_SCHEMES or "@" not in parts.netloc:
        return url, None, None
    userinfo, _, host = parts.netloc.rpartition("@")
    user, sep, password = userinfo.partition(":")
    clean = urlunsplit(parts._replace(netloc=host))
    return clean, unquote(user), unquote(password) if sep else None
