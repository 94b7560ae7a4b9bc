"""A key set is cached per tenant, in the shared cache and in each process's parsed copies: two
workspaces naming the same JWKS URL each fetch it under their own network policy. The process's
copies were keyed by the URL alone, so for 30 s a workspace whose policy refuses the address was
handed the set another workspace had fetched."""

import ipaddress
from datetime import UTC, datetime

import pytest
from django_tenants.utils import schema_context

from apps.identity.jwks import JwksUnavailable, jwks_key
from foundry.runtime.network import NetworkPolicy
from tests.identity.conftest import idp  # noqa: F401 - fixture

LOOPBACK = NetworkPolicy(allowed_networks=(ipaddress.ip_network("127.0.0.0/8"),))
CONFIGURED = datetime(2026, 1, 1, tzinfo=UTC)  # when the settings were saved: before any fetch here


def test_a_key_set_one_workspace_fetched_is_not_another_s_without_its_own_policy(acme, globex, idp):  # noqa: F811
    uri = f"{idp.issuer}/jwks"
    with schema_context("acme"):  # an operator allowed acme loopback addresses
        assert [key["kid"] for key in jwks_key(uri, "k1", lambda: LOOPBACK, configured=CONFIGURED)] == ["k1"]
    assert idp.requests == ["/jwks"]
    with schema_context("globex"), pytest.raises(JwksUnavailable) as refused:  # globex: public addresses only
        jwks_key(uri, "k1", lambda: NetworkPolicy(), configured=CONFIGURED)
    assert refused.value.code == "jwks_unreachable"
    assert idp.requests == ["/jwks"]  # refused before any request: the address is loopback
    with schema_context("acme"):  # acme's own copy still serves it
        assert [key["kid"] for key in jwks_key(uri, "k1", lambda: NetworkPolicy(), configured=CONFIGURED)] == ["k1"]
