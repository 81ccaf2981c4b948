"""This machine's network addresses, for the URLs ``runlog server start --host 0.0.0.0`` prints.

The C library's getifaddrs(3) lists every interface's addresses; the standard library has no
wrapper for it, so it is called through ctypes (Linux and the BSDs, macOS included, lay out
the few fields read here the same way, but for the first bytes of a sockaddr). Where it is
missing, the addresses the host name resolves to stand in.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import ipaddress
import socket
import sys
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class InterfaceAddress:
    interface: str  # "eth0"; "" when only the host name's addresses were found
    address: IPAddress


class _Sockaddr(ctypes.Structure):
    # Linux: a 16-bit family. BSD and macOS: a length byte, then an 8-bit family.
    _fields_ = (
        [("sa_family", ctypes.c_ushort)] if sys.platform.startswith("linux")
        else [("sa_len", ctypes.c_uint8), ("sa_family", ctypes.c_uint8)]
    )


class _Ifaddrs(ctypes.Structure):
    pass


_Ifaddrs._fields_ = [
    ("ifa_next", ctypes.POINTER(_Ifaddrs)),
    ("ifa_name", ctypes.c_char_p),
    ("ifa_flags", ctypes.c_uint),
    ("ifa_addr", ctypes.POINTER(_Sockaddr)),
    ("ifa_netmask", ctypes.POINTER(_Sockaddr)),
    ("ifa_ifu", ctypes.POINTER(_Sockaddr)),
    ("ifa_data", ctypes.c_void_p),
]

# Where the address sits inside sockaddr_in and sockaddr_in6 (after family, port, and for
# IPv6 the flow info), and its length.
_ADDRESS_AT = {socket.AF_INET: (4, 4), socket.AF_INET6: (8, 16)}


def _from_getifaddrs() -> list[InterfaceAddress]:
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    head = ctypes.POINTER(_Ifaddrs)()
    if libc.getifaddrs(ctypes.byref(head)) != 0:
        raise OSError(ctypes.get_errno(), "getifaddrs failed")
    found = []
    try:
        node = head
        while node:
            entry = node.contents
            if entry.ifa_addr and entry.ifa_addr.contents.sa_family in _ADDRESS_AT:
                offset, size = _ADDRESS_AT[entry.ifa_addr.contents.sa_family]
                raw = ctypes.string_at(ctypes.addressof(entry.ifa_addr.contents) + offset, size)
                found.append(InterfaceAddress(entry.ifa_name.decode(errors="replace"), ipaddress.ip_address(raw)))
            node = entry.ifa_next
    finally:
        libc.freeifaddrs(head)
    return found


def _from_host_name() -> list[InterfaceAddress]:
    with contextlib.suppress(OSError):
        infos = socket.getaddrinfo(socket.gethostname(), None, type=socket.SOCK_STREAM)
        return [InterfaceAddress("", ipaddress.ip_address(info[4][0].split("%")[0])) for info in infos]
    return []


def interface_addresses() -> list[InterfaceAddress]:
    """Every IPv4 and IPv6 address of this machine's interfaces, in the order the system lists them."""
    try:
        found = _from_getifaddrs()
    except (OSError, AttributeError, TypeError, ValueError):
        found = []
    return list(dict.fromkeys(found or _from_host_name()))


def reachable_addresses(host: str) -> list[InterfaceAddress]:
    """The addresses a server listening on the wildcard HOST answers on, other machines' first.

    ``0.0.0.0`` serves IPv4 only; ``::`` serves IPv6 and, as on Linux by default, IPv4 too.
    Link-local addresses are left out: a URL with one needs the interface's zone appended.
    """
    families = (ipaddress.IPv4Address,) if host == "0.0.0.0" else (ipaddress.IPv4Address, ipaddress.IPv6Address)
    usable = [a for a in interface_addresses() if isinstance(a.address, families) and not a.address.is_link_local]
    return sorted(usable, key=lambda a: (a.address.is_loopback, a.address.version))
