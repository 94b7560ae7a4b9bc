"""Tags of the console's base page."""

from django import template
from django.core.exceptions import NON_FIELD_ERRORS
from django.forms import BaseForm

register = template.Library()


def _refused(value, depth: int = 0) -> bool:
    if isinstance(value, BaseForm):  # errors of its fields, marked beside them (a form's own say so itself)
        return value.is_bound and any(name != NON_FIELD_ERRORS for name in value.errors)
    if depth < 2 and isinstance(value, list | tuple):  # a page of several forms: rows of dicts
        return any(_refused(item, depth + 1) for item in value)
    if depth < 2 and isinstance(value, dict):
        return any(_refused(item, depth + 1) for item in value.values())
    return False


@register.simple_tag(takes_context=True)
def form_refused(context) -> bool:
    """Whether the page shows a form posted and refused (a bound form with errors): the page says
    so in its title and its alert region, so a screen reader tells that the form came back
    refused, not only that a page loaded (WCAG 3.3.1, 4.1.3)."""
    return any(_refused(value) for layer in context.dicts if isinstance(layer, dict) for value in layer.values())


@register.simple_tag(takes_context=True)
def page_failed(context) -> bool:
    """Whether the page shows a refusal of what was asked (a service's error: an archive refused,
    an export already under way, a filter that does not parse): its title says so, as a refused
    form's does, and the page's error section is its alert (WCAG 3.3.1, 4.1.3)."""
    return any(
        isinstance(value, Exception) for layer in context.dicts if isinstance(layer, dict) for value in layer.values()
    )
