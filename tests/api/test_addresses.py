"""This machine's addresses (api/addresses.py) and the banner ``runlog server start`` prints."""

from __future__ import annotations

import ipaddress
import socket

import psutil

from runlog.api.addresses import interface_addresses, reachable_addresses
from runlog.api.commands.server import banner

WARNING = "Warning: the API has no authentication:"


def psutil_addresses() -> set[tuple[str, str]]:
    return {
        (name, a.address.split("%")[0])
        for name, addrs in psutil.net_if_addrs().items()
        for a in addrs if a.family in (socket.AF_INET, socket.AF_INET6)
    }


def test_interface_addresses_are_the_ones_psutil_sees_with_their_interfaces():
    found = {(a.interface, str(a.address)) for a in interface_addresses()}
    assert found == psutil_addresses()


def test_a_wildcard_address_lists_what_it_serves_others_first_and_no_link_local_ones():
    v4 = reachable_addresses("0.0.0.0")
    assert v4 and all(a.address.version == 4 for a in v4)
    both = reachable_addresses("::")
    assert {a.address.version for a in both} == {a.address.version for a in interface_addresses()}
    for found in (v4, both):
        assert not any(a.address.is_link_local for a in found)
        loopback = [a.address.is_loopback for a in found]
        assert loopback == sorted(loopback)  # loopback addresses last


def test_the_banner_for_all_interfaces_gives_a_url_per_address_ipv6_in_brackets_and_warns():
    lines = banner("::", 4200)
    assert lines[0] == "Listening on all interfaces. Clients set PREFECT_API_URL to one of:"
    urls = [line.split()[0] for line in lines[1:-1]]
    expected = {
        f"http://[{a}]:4200/api" if ipaddress.ip_address(a).version == 6 else f"http://{a}:4200/api"
        for _, a in psutil_addresses() if not ipaddress.ip_address(a).is_link_local
    }
    assert set(urls) == expected
    assert "http://[::1]:4200/api" in urls and "http://127.0.0.1:4200/api" in urls
    assert lines[-1].startswith(WARNING)


def test_only_an_address_other_machines_can_reach_gets_the_warning():
    assert banner("127.0.0.1", 4200) == ["Clients set PREFECT_API_URL=http://127.0.0.1:4200/api"]
    assert banner("::1", 4200) == ["Clients set PREFECT_API_URL=http://[::1]:4200/api"]
    assert banner("localhost", 4200) == ["Clients set PREFECT_API_URL=http://localhost:4200/api"]
    exposed = banner("192.0.2.7", 4300)
    assert exposed[0] == "Clients set PREFECT_API_URL=http://192.0.2.7:4300/api" and exposed[1].startswith(WARNING)
    assert banner("runlog.internal", 4200)[1].startswith(WARNING)
