"""What a base URL says about where calls go: its host, whether that is this machine, and
whether the URL is usable at all (checked before the first call, not after seven retries)."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from synthmix.core.errors import ConfigError

_LOOPBACK_NAMES = {"localhost", "0.0.0.0", ""}


def host_of(url: str) -> str:
    """The host of `url`, lower-case; an IPv6 literal keeps its brackets ("[::1]")."""
    rest = url.split("://", 1)[-1]
    authority = rest.split("/", 1)[0].rsplit("@", 1)[-1]
    if authority.startswith("["):  # IPv6 literal: "[::1]:8000"
        return authority.split("]", 1)[0] + "]"
    return authority.split(":", 1)[0].lower()


def is_loopback(url: str) -> bool:
    """Whether `url` points at this machine by its name (localhost, 127.x, ::1). A tunnel or
    proxy on a loopback port may still forward elsewhere: only the user can say so."""
    host = host_of(url)
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_base_url(url: str) -> str:
    """`url` if it is an http(s) URL with a host; otherwise one ConfigError saying so."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"base_url {url!r} is not an http(s) URL with a host "
            "(e.g. http://127.0.0.1:8000 or https://api.openai.com/v1)"
        )
    try:
        parts.port  # noqa: B018 - a bad port raises here
    except ValueError:
        raise ConfigError(f"base_url {url!r}: the port is not a number in 1-65535") from None
    return url.strip()
