"""Template helpers for pages that link into runs from elsewhere (the agent page)."""

from django import template

from apps.accounts.permissions import Permission

register = template.Library()


@register.filter
def may(user, permission: str) -> bool:
    """`{% if user|may:"runs.start" %}`: the permission matrix, for a template."""
    try:
        return bool(user.is_authenticated and user.has_permission(Permission(permission)))
    except ValueError:
        return False  # an unknown permission name grants nothing
