"""The permission every API view runs (also DRF's default, so a view that forgets fails closed):
tenant host, authenticated principal, role permission, token scope."""

from django.db import connection
from rest_framework.exceptions import NotAuthenticated, NotFound, PermissionDenied
from rest_framework.permissions import BasePermission

_SAFE_ALIASES = {"HEAD": "GET", "OPTIONS": "GET"}


class TenantAccess(BasePermission):
    def has_permission(self, request, view) -> bool:
        tenant = getattr(request._request, "tenant", None)
        if tenant is None or connection.schema_name != tenant.schema_name:
            raise NotFound("The API is served on workspace hosts.")
        rules = getattr(view, "access", {})
        rule = rules.get(_SAFE_ALIASES.get(request.method, request.method))
        user = request.user
        if rule is None and request.method == "OPTIONS" and rules:
            # A view without GET (a POST-only action): its description to whoever may use one of
            # its methods, a refusal like theirs to anyone else.
            if user is None or not user.is_authenticated:
                raise NotAuthenticated()
            rule = next((r for r in rules.values() if _allows(user, r)), next(iter(rules.values())))
        if rule is None:
            # No handler at all: let the view answer 405. A handler without a rule: refuse.
            return not hasattr(view, request.method.lower())
        permission, scope = rule
        if user is None or not user.is_authenticated:
            raise NotAuthenticated()
        if not user.has_permission(permission):
            _denied(request, user, permission=str(permission))
            raise PermissionDenied(f"Your role does not allow {permission}.")
        if hasattr(user, "has_scope") and not user.has_scope(scope):
            _denied(request, user, scope=str(scope))
            raise PermissionDenied(f"This token lacks the '{scope}' scope.")
        return True


def _allows(user, rule) -> bool:
    permission, scope = rule
    return user.has_permission(permission) and (not hasattr(user, "has_scope") or user.has_scope(scope))


def _denied(request, user, **needed) -> None:
    """A signed-in principal refused: a security event (`access.denied`, outcome denied)."""
    from apps.accounts.access import access_denied_record

    access_denied_record(request._request, user, **needed)
