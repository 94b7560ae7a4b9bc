"""Roles everywhere: every API operation enforces the one permission matrix
(apps/accounts/permissions.py) for every role — the console's pages are held to the same matrix
in tests/accounts/test_members.py. The operations are read from the URL configuration, so an
endpoint is covered the day it is added.

A role the matrix refuses gets 403 (and an `access.denied` event); a role it allows gets past
the permission check (whatever the dummy arguments then make of the request: 200, 400, 404…).
Tokens carry every scope here, so only the role decides.
"""

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from apps.accounts.permissions import Role, role_has_permission
from tests.api.conftest import api, issue
from tests.conftest import audit_events

DUMMY = {
    "int": "999999",
    "slug": "no-such-thing",
    "str": "no-such-thing",
    "uuid": "00000000-0000-4000-8000-000000000000",
}


def _walk(patterns, prefix=""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), pattern.callback


def _path(route: str) -> str:
    return "/" + re.sub(r"<(?:(\w+):)?\w+>", lambda m: DUMMY.get(m.group(1) or "str", "x"), route)


def api_operations():
    """(path, method, permission) for every operation of the API on a workspace host."""
    for route, view in _walk(get_resolver("foundry.urls_tenant").url_patterns):
        view_class = getattr(view, "view_class", None) or getattr(view, "cls", None)
        for method, (permission, _scope) in (getattr(view_class, "access", None) or {}).items():
            yield pytest.param(_path(route), method, permission, id=f"{method} /{route}")


OPERATIONS = list(api_operations())


def test_the_walk_finds_the_api():
    assert len(OPERATIONS) > 50


@pytest.mark.parametrize(("path", "method", "permission"), OPERATIONS)
def test_every_role_is_held_to_the_matrix(acme, path, method, permission):
    for role in Role:
        client = api(acme, issue(acme, role=role, name=f"matrix-{role}"))
        before = len(audit_events("acme", action="access.denied"))
        response = client.generic(method, path, b"{}", content_type="application/json")
        allowed = role_has_permission(role, permission)
        if allowed:
            assert response.status_code != 403, (role, response.content[:300])
        else:
            assert response.status_code == 403, (role, response.status_code, response.content[:300])
            assert len(audit_events("acme", action="access.denied")) == before + 1, role
