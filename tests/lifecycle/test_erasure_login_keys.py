"""A data-subject erasure and the person's sign-in limit buckets (docs/lifecycle.md)."""

import hashlib

from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.accounts.permissions import Role
from apps.lifecycle.erasure import member_erase
from apps.lifecycle.inventory import redis_clients
from apps.tenants.limits import login_admit
from tests.conftest import PASSWORD


def _buckets_naming(tenant_id: int, email: str) -> list[bytes]:
    digest = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
    found = []
    for client in redis_clients():
        found += [
            k for k in client.scan_iter(match=f"rl:login-account:{tenant_id}:*", count=1000) if digest.encode() in k
        ]
    return found


def test_erasing_a_member_deletes_their_sign_in_limit_buckets(acme):
    """The buckets are keyed by a digest of the name typed (apps/tenants/limits.py `login_name_key`);
    erasure finds them by the same digest."""
    email = "erase.me@acme.test"
    with schema_context(acme.schema_name):
        User.objects.create_user(email, PASSWORD, role=Role.VIEWER)
    assert login_admit(tenant_id=acme.pk, client="203.0.113.9", account=email).allowed
    assert _buckets_naming(acme.pk, email), "the sign-in made no per-account bucket (test setup)"
    with schema_context(acme.schema_name):
        erased = member_erase(actor="cli:erase_member", email=email)
    assert erased.member_removed
    assert _buckets_naming(acme.pk, email) == [], "the erased person's sign-in limit buckets remain"
    assert erased.redis_keys >= 1
