"""Endpoint URL checks: http(s) only, and no private addresses unless allowed.

A host name is resolved and every address it resolves to must be public
(not loopback, private, link-local, multicast, reserved or unspecified), so a
name cannot point the worker at the service's own network. The same check runs
again before every delivery attempt (a name may resolve elsewhere later).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from service.errors import BadUserInput

MAX_URL_LENGTH = 2048


def _public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return not (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )


def parse(field: str, url: str) -> tuple[str, int]:
    """(host, port) of an absolute http(s) URL; BAD_USER_INPUT otherwise."""
    if len(url) > MAX_URL_LENGTH:
        raise BadUserInput(field, f"must be at most {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise BadUserInput(field, "is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadUserInput(field, "must be an absolute http or https URL")
    if parts.username or parts.password:
        raise BadUserInput(field, "must not carry credentials")
    default = 443 if parts.scheme == "https" else 80
    return parts.hostname, port or default


async def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (an IP literal: itself)."""
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return []
    return sorted({str(info[4][0]) for info in infos})


async def check(field: str, url: str, *, allow_private: bool) -> None:
    """Refuse URLs that are not http(s) or that reach a private address."""
    host, port = parse(field, url)
    if allow_private:
        return
    addresses = await resolve(host, port)
    if not addresses:
        raise BadUserInput(field, "host does not resolve")
    for address in addresses:
        if not _public(ipaddress.ip_address(address.split("%", 1)[0])):
            raise BadUserInput(
                field,
                "resolves to a loopback, private or link-local address "
                "(set WEBHOOK_ALLOW_PRIVATE_URLS=true to allow it)",
            )
