""" "Public" is not only what the interpreter's `ipaddress` tables say (foundry/runtime/network.py
`_NOT_GLOBAL`): Python before 3.11.10 (CVE-2024-4032, gh-113171; 3.11.7 here) calls 192.0.0.8 …
192.0.0.255 global, though IANA lists 192.0.0.0/24 as not globally reachable but for 192.0.0.9
and 192.0.0.10; an `http` tool whose declared host resolved there was connected to. Found by a
review."""

import ipaddress

import pytest

from foundry.runtime.network import FetchError, NetworkPolicy, address_refusal, fetch


@pytest.mark.parametrize("address", ["192.0.0.8", "192.0.0.100", "192.0.0.255", "3fff::1"])
def test_the_ietf_protocol_assignments_block_is_not_taken_for_public(address):
    """192.0.0.0/24 (RFC 6890) and 3fff::/20 (RFC 9637) are refused; the anycast .9 and .10 are not."""
    assert address_refusal(ipaddress.ip_address(address), NetworkPolicy()) is not None
    assert address_refusal(ipaddress.ip_address("192.0.0.9"), NetworkPolicy()) is None


def test_a_declared_host_resolving_into_192_0_0_0_24_is_refused_before_connecting():
    """`api.example.com` resolving to 192.0.0.100: refused with http_address_refused, no
    connection attempted (it was sent, to whatever the network does with that address)."""
    with pytest.raises(FetchError) as caught:
        fetch(
            "GET",
            "http://api.example.com/",
            hosts=["api.example.com"],
            timeout=1,
            resolver=lambda host, port: ["192.0.0.100"],
        )
    assert caught.value.code == "http_address_refused"
