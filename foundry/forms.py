"""Console forms and the services behind them."""

from django import forms
from django.core.exceptions import ValidationError


def form_errors_add(form: forms.Form, error: ValidationError, *, field: str | None = None) -> None:
    """Put a service's ValidationError on the form: each field's errors on that field when the form
    has it, the rest at the top. An error without fields goes to `field` (default: the top)."""
    errors = error.error_dict if hasattr(error, "error_dict") else {field: error.error_list}
    for name, field_errors in errors.items():
        for one in field_errors:
            form.add_error(name if name in form.fields else None, one)
