"""Template helpers for run pages and pages that link into runs from elsewhere (the agent page)."""

from django import template

from apps.accounts.permissions import Permission
from foundry.text import text_shown

register = template.Library()


@register.filter
def may(user, permission: str) -> bool:
    """`{% if user|may:"runs.start" %}`: the permission matrix, for a template."""
    try:
        return bool(user.is_authenticated and user.has_permission(Permission(permission)))
    except ValueError:
        return False  # an unknown permission name grants nothing


@register.filter
def shown(text) -> str:
    """`{{ run.output|shown }}`: text from a member, a model or a tool's service, with the control
    and text-direction characters that would make it read other than it is escaped (`\\u202e`)."""
    return text_shown(text) if isinstance(text, str) else text
