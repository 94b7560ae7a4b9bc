"""Console forms and the services behind them."""

from django import forms
from django.core.exceptions import ValidationError


class TextareaField(forms.CharField):
    """A textarea's text as typed: browsers submit its line breaks as CRLF (HTML spec) while its
    maxlength counts each as one character, so they become LF before `max_length` is checked
    (the limit is the one the page enforces) and the text is stored as the API stores it."""

    widget = forms.Textarea

    def to_python(self, value):
        value = super().to_python(value)
        return value.replace("\r\n", "\n") if isinstance(value, str) else value


def form_errors_add(form: forms.Form, error: ValidationError, *, field: str | None = None) -> None:
    """Put a service's ValidationError on the form: each field's errors on that field when the form
    has it, the rest at the top. An error without fields goes to `field` (default: the top)."""
    errors = error.error_dict if hasattr(error, "error_dict") else {field: error.error_list}
    for name, field_errors in errors.items():
        for one in field_errors:
            form.add_error(name if name in form.fields else None, one)
