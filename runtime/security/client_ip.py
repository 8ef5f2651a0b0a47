"""The client's address: the direct peer, or what trusted proxies say in X-Forwarded-For.

Anyone can send X-Forwarded-For, so it is read only when the direct peer is one of
`server.trusted_proxies`, and then from the right: each trusted proxy appends the address
it received from, so the right-most entry that is not a trusted proxy is the first one no
proxy of ours vouches for (taking the left-most would let a client pick its own address,
and its own rate-limit budget).
"""

from __future__ import annotations

import ipaddress
from typing import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def in_networks(address: str, networks: Iterable[Network]) -> bool:
    """Whether `address` (an IPv4-mapped IPv6 one counts as its IPv4) is in any of `networks`;
    not an address at all: no."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return any(ip in net for net in networks)


class ClientIp:
    def __init__(self, trusted_proxies: Iterable[str]) -> None:
        self.trusted: tuple[Network, ...] = tuple(ipaddress.ip_network(p, strict=False) for p in trusted_proxies)

    def _is_trusted(self, address: str) -> bool:
        return in_networks(address, self.trusted)

    def resolve(self, peer: str, forwarded_for: str | None) -> str:
        if not self.trusted or not forwarded_for or not self._is_trusted(peer):
            return peer
        client = peer
        for hop in reversed(forwarded_for.split(",")):
            hop = hop.strip()
            try:
                ipaddress.ip_address(hop)
            except ValueError:
                # Not an address: no trusted proxy wrote it, so go no further left.
                return client
            client = hop
            if not self._is_trusted(hop):
                return hop
        return client  # every hop is a trusted proxy: the left-most is the best we know
