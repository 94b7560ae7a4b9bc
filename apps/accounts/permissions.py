"""Roles and what each may do: the one permission matrix, enforced by `require_permission`.

docs/roles.md renders this table for humans; tests/accounts/test_permissions.py keeps the two equal.
"""

from enum import StrEnum

from django.db import models


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    DEVELOPER = "developer", "Developer"
    OPERATOR = "operator", "Operator"
    VIEWER = "viewer", "Viewer"


class Permission(StrEnum):
    DASHBOARD_VIEW = "dashboard.view"
    MEMBERS_VIEW = "members.view"
    MEMBERS_MANAGE = "members.manage"
    OWNERS_MANAGE = "owners.manage"
    SETTINGS_MANAGE = "settings.manage"
    AUDIT_VIEW = "audit.view"
    DOMAINS_VIEW = "domains.view"
    DOMAINS_EDIT = "domains.edit"
    AGENTS_VIEW = "agents.view"
    AGENTS_EDIT = "agents.edit"
    AGENTS_DEPLOY = "agents.deploy"
    RUNS_VIEW = "runs.view"
    RUNS_START = "runs.start"
    RUNS_APPROVE = "runs.approve"
    USAGE_VIEW = "usage.view"


_VIEWER = {
    Permission.DASHBOARD_VIEW,
    Permission.MEMBERS_VIEW,
    Permission.DOMAINS_VIEW,
    Permission.AGENTS_VIEW,
    Permission.RUNS_VIEW,
    Permission.USAGE_VIEW,
}
_OPERATOR = _VIEWER | {Permission.RUNS_START, Permission.RUNS_APPROVE}
_DEVELOPER = _VIEWER | {
    Permission.DOMAINS_EDIT,
    Permission.AGENTS_EDIT,
    Permission.AGENTS_DEPLOY,
    Permission.RUNS_START,
}
_ADMIN = _OPERATOR | _DEVELOPER | {Permission.MEMBERS_MANAGE, Permission.SETTINGS_MANAGE, Permission.AUDIT_VIEW}
_OWNER = _ADMIN | {Permission.OWNERS_MANAGE}

MATRIX: dict[Role, frozenset[Permission]] = {
    Role.OWNER: frozenset(_OWNER),
    Role.ADMIN: frozenset(_ADMIN),
    Role.DEVELOPER: frozenset(_DEVELOPER),
    Role.OPERATOR: frozenset(_OPERATOR),
    Role.VIEWER: frozenset(_VIEWER),
}


def role_has_permission(role: str, permission: Permission) -> bool:
    try:
        return permission in MATRIX[Role(role)]
    except ValueError:
        return False  # an unknown role may do nothing


def role_exceeds(role: str, other: str) -> bool:
    """`role` may do something `other` may not. Roles are not one ladder (a developer deploys
    agents, an operator approves runs), so this compares what each may do; an unknown role may
    do nothing."""
    granted = {r: MATRIX.get(r, frozenset()) for r in (role, other)}
    return not granted[role] <= granted[other]
