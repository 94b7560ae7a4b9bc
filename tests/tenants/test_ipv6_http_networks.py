"""a tenant's http allow-list (`manage.py tenant_http_networks`, docs/runs.md "HTTP
tools and private networks") keeps each network once, in one spelling
(apps/tenants/services.py `http_networks_clean`: "The networks as CIDRs, each once"), so that
`--remove` takes out what `--allow` put in. An IPv6 zone id (`%eth0`) names an interface on the
operator's machine, not part of any network: `fe80::%eth0/64` is the network `fe80::/64`."""

import ipaddress

from apps.tenants.models import Tenant
from apps.tenants.services import tenant_http_networks_set
from foundry.runtime.network import NetworkPolicy, address_refusal


def test_removing_a_link_local_network_removes_it_whatever_zone_id_it_was_allowed_with(acme):
    """An operator admits link-local for a tenant as `fe80::%eth0/64` (the way `ip addr` prints
    it), later removes `fe80::/64`. Expected: the tenant's http tools no longer reach fe80::1
    (link-local — cloud metadata — is refused unless listed, docs/runs.md). Today the zone id is
    kept in the stored CIDR, so the removal matches nothing, the command reports success, and
    link-local stays reachable. (A zone id also lets the stored value exceed the column's 50
    characters, which PostgreSQL's array cast silently truncates into another network.)"""
    tenant_http_networks_set(tenant=acme, allow=["fe80::%eth0/64"], actor="system")
    tenant_http_networks_set(tenant=acme, remove=["fe80::/64"], actor="system")
    tenant = Tenant.objects.get(pk=acme.pk)
    policy = NetworkPolicy(allowed_networks=tuple(tenant.http_networks()))
    assert address_refusal(ipaddress.ip_address("fe80::1"), policy) == "link-local", tenant.http_allowed_networks
