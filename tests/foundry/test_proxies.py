"""The client's address behind the platform's own proxies (foundry/proxies.py): from a peer in
FOUNDRY_TRUSTED_PROXIES, the right-most X-Forwarded-For address that is not a trusted proxy;
from any other peer, the peer, whatever the header says. Sign-in limits and audit events see it."""

import ipaddress

import pytest
from django.test import Client, override_settings

from foundry.proxies import client_address
from tests.conftest import PASSWORD, audit_events

PROXY = "172.18.0.9"  # the compose network's address of the proxy, as gunicorn sees it
TRUSTED = [ipaddress.ip_network("172.16.0.0/12"), ipaddress.ip_network("10.0.0.0/8")]


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        (PROXY, "203.0.113.66", "203.0.113.66"),
        (PROXY, "6.6.6.6, 203.0.113.66", "203.0.113.66"),  # the left one was written by the client
        (PROXY, "203.0.113.66, 10.1.2.3", "203.0.113.66"),  # through two proxies of ours
        (PROXY, "10.1.2.3", "10.1.2.3"),  # only proxies: the farthest one
        (PROXY, "", None),
        (PROXY, "not-an-address", None),
        (PROXY, "203.0.113.66, bogus", None),
        ("198.51.100.7", "203.0.113.66", None),  # not through a proxy of ours: the header is the client's
        (PROXY, "203.0.113.66:50412", "203.0.113.66"),  # with its port (Azure Application Gateway)
        (PROXY, "[2001:db8::7]:50412, 10.1.2.3:443", "2001:db8::7"),
        (PROXY, "[2001:db8::7]", "2001:db8::7"),
        (PROXY, "203.0.113.66:port", None),
        (PROXY, "[2001:db8::7", None),
        ("2001:db8::1", "203.0.113.66", None),
    ],
)
def test_the_client_address_is_the_outermost_trusted_proxys_peer(peer, forwarded, client):
    meta = {"REMOTE_ADDR": peer, **({"HTTP_X_FORWARDED_FOR": forwarded} if forwarded else {})}
    assert client_address(meta, TRUSTED) == client


def _via_proxy(client_ip: str) -> Client:
    return Client(HTTP_HOST="acme.localhost", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=client_ip)


def test_behind_a_trusted_proxy_wrong_passwords_elsewhere_do_not_lock_a_member_out(acme, settings):
    """docs/limits.md: attempts are counted per address and account, "so a flood cannot lock a
    member out from everywhere" — behind the proxy too."""
    settings.FOUNDRY_TRUSTED_PROXIES = TRUSTED
    settings.FOUNDRY_LOGIN_RATE_PER_ACCOUNT = "5/m"
    attacker = _via_proxy("203.0.113.66")
    for _ in range(6):
        attacker.post("/login/", {"username": "owner@acme.test", "password": "guess"})
    assert attacker.post("/login/", {"username": "owner@acme.test", "password": PASSWORD}).status_code == 429
    member = _via_proxy("198.51.100.7")
    assert member.post("/login/", {"username": "owner@acme.test", "password": PASSWORD}).status_code == 302
    assert audit_events("acme", action="auth.login")[-1].ip == "198.51.100.7"


def test_without_trusted_proxies_the_header_is_ignored(acme, settings):
    settings.FOUNDRY_TRUSTED_PROXIES = []
    client = Client(HTTP_HOST="acme.localhost", REMOTE_ADDR="198.51.100.7", HTTP_X_FORWARDED_FOR="203.0.113.1")
    assert client.post("/login/", {"username": "owner@acme.test", "password": PASSWORD}).status_code == 302
    assert audit_events("acme", action="auth.login")[-1].ip == "198.51.100.7"


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        # The trusted proxy 172.18.0.9, seen through a dual-stack listener ([::]) as mapped IPv6.
        ("::ffff:172.18.0.9", "203.0.113.66", "203.0.113.66"),
        # A second proxy of ours wrote its own address mapped: it is not the client.
        ("172.18.0.9", "203.0.113.66, ::ffff:10.1.2.3", "203.0.113.66"),
        # A mapped client address is written as the IPv4 address it is.
        ("172.18.0.9", "::ffff:203.0.113.66", "203.0.113.66"),
    ],
)
def test_an_ipv4_mapped_address_is_the_ipv4_address_it_maps(peer, forwarded, client):
    assert client_address({"REMOTE_ADDR": peer, "HTTP_X_FORWARDED_FOR": forwarded}, TRUSTED) == client


def test_behind_a_dual_stack_listener_audit_events_see_the_client(acme, settings):
    """Not the proxy's mapped address for every visitor (docs/operations/deployment.md: five
    wrong passwords from anyone would lock a member out)."""
    settings.FOUNDRY_TRUSTED_PROXIES = TRUSTED
    client = Client(HTTP_HOST="acme.localhost", REMOTE_ADDR="::ffff:172.18.0.9", HTTP_X_FORWARDED_FOR="203.0.113.66")
    client.post("/login/", {"username": "owner@acme.test", "password": "wrong-password-here"})
    assert audit_events("acme", action="auth.login.failed")[-1].ip == "203.0.113.66"


@pytest.mark.parametrize(("peer", "kept"), [(PROXY, True), ("198.51.100.7", False)])
def test_x_forwarded_proto_is_taken_from_the_trusted_proxies_only(peer, kept):
    """With FOUNDRY_BEHIND_TLS_PROXY, Django takes `X-Forwarded-Proto: https` for a request that
    came over https: from a peer that is not one of the proxies (the web process reached past
    them) the header is the client's word, dropped, so the request is the plain http it was."""
    from django.test import RequestFactory

    from foundry.proxies import forwarded_apply

    request = RequestFactory().get("/", REMOTE_ADDR=peer, HTTP_X_FORWARDED_PROTO="https")
    forwarded_apply(request.META, TRUSTED)
    assert ("HTTP_X_FORWARDED_PROTO" in request.META) is kept
    with override_settings(SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https")):
        assert request.is_secure() is kept
