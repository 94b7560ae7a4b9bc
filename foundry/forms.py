"""Console forms and the services behind them."""

import hashlib
import secrets

from django import forms
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from redis.exceptions import RedisError

FORM_ONCE = "once"  # the hidden field of a form whose post must not be taken twice
FORM_ONCE_SECONDS = 24 * 3600


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


def form_once() -> str:
    """A fresh value for the hidden `once` field of a form that issues something shown once (a
    token's secret, an invitation link): each rendering of the page gets its own."""
    return secrets.token_urlsafe(16)


def form_sent_before(request: HttpRequest) -> bool:
    """Whether this post's `once` value came before: a reload (or Back, then Forward) of the page
    the form answered with sends the same post again, and a double click sends it twice. Its first
    sending is remembered a day, in the cache and atomically (of two at once, one is first). A post
    without the field (a script) is never a repeat, nor is one when the cache cannot be asked."""
    value = request.POST.get(FORM_ONCE, "")
    if not value:
        return False
    key = "forms.once:" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
    try:
        return not cache.add(key, 1, FORM_ONCE_SECONDS)
    except RedisError:
        return False


def form_sent_again(request: HttpRequest) -> HttpResponse:
    """The answer to a post `form_sent_before` found a repeat of: nothing done, and why."""
    from foundry.errors import error_response

    return error_response(
        request,
        status=409,
        code="form_already_sent",
        message="This form was sent already (reloading the page it answered with sends it again), so "
        "nothing was done this time. Open the page afresh to send it anew.",
    )
