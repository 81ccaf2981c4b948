"""Prefect's ``allow_private_urls=False``: a channel so marked may only reach public addresses.

The check happens where the address is chosen, in the resolver of a session kept for such
channels, so a name that resolves to a public address when checked and to a private one when
connecting (DNS rebinding) cannot slip through; IP literals never reach a resolver, so
``private_literal`` checks those before the request.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver


class PrivateAddress(OSError):
    """The channel may reach public addresses only, and this one is not."""


def is_public(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    except ValueError:
        return False
    return ip.is_global and not ip.is_multicast


def private_literal(host: str | None) -> bool:
    """Whether HOST is an IP address (not a name) that is not public."""
    if not host:
        return False
    try:
        ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    return not is_public(host.strip("[]"))


class PublicOnlyResolver(AbstractResolver):
    """Resolves as usual, then keeps only the public addresses; none left is an error."""

    def __init__(self) -> None:
        self._inner = DefaultResolver()

    async def resolve(self, host: str, port: int = 0, family: Any = socket.AF_INET) -> list[ResolveResult]:
        public = [r for r in await self._inner.resolve(host, port, family) if is_public(r["host"])]
        if not public:
            raise PrivateAddress(f"{host} resolves to no public address")
        return public

    async def close(self) -> None:
        await self._inner.close()
