"""View guards. Tenant pages check the permission matrix; operator pages check that the user
is a platform operator signed in on the operator host. Both fail closed."""

from collections.abc import Callable
from functools import wraps
from urllib.parse import urlsplit

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.utils.http import url_has_allowed_host_and_scheme
from django_htmx.http import HttpResponseClientRedirect

from apps.accounts.permissions import Permission
from apps.audit.models import Outcome
from apps.audit.services import audit_record
from foundry.errors import error_response


def _forbidden(request: HttpRequest, message: str) -> HttpResponse:
    return error_response(request, status=403, code="forbidden", message=message)


def access_denied_record(request: HttpRequest, principal, target: tuple[str, str] | None = None, **data) -> None:
    """A signed-in principal refused: one `access.denied` event (outcome denied), whichever layer
    refused — the permission matrix's guards, or a service's own rule (an admin making an owner,
    a token issuing a wider one). `data` says what was missing or why."""
    audit_record(
        action="access.denied",
        actor=principal,
        target=target or ("route", request.path[:200]),
        data={"method": request.method, **data},
        outcome=Outcome.DENIED,
        request=request,
    )


def denied_response(request: HttpRequest, message: str) -> HttpResponse:
    """A service refused the signed-in user (PermissionDenied): recorded, then answered 403."""
    access_denied_record(request, request.user, reason=message[:200])
    return _forbidden(request, message)


def login_redirect(request: HttpRequest) -> HttpResponse:
    """Signed out (or the session expired): to the sign-in page, and back here afterwards.

    An htmx request (a live timeline polling, a row's form) is told to load the sign-in page as
    a whole page (HX-Redirect), returning to the page it was on: following a 302 instead would
    swap the sign-in page into the fragment, and the fragment's URL would be where sign-in leads."""
    if not request.htmx:
        if request.method in ("GET", "HEAD"):
            return redirect_to_login(request.get_full_path())
        # A form sent (its session ended meanwhile): back to the page it was on, not to its
        # target, which answers a GET with 405 — the form is there to send again.
        page = request.headers.get("Referer", "")
    else:
        page = request.htmx.current_url or ""
    if url_has_allowed_host_and_scheme(page, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        parts = urlsplit(page)
        page = parts.path + (f"?{parts.query}" if parts.query else "")
    else:
        page = "/"
    if not request.htmx:
        return redirect_to_login(page or "/")
    return HttpResponseClientRedirect(redirect_to_login(page or "/").url)


def require_permission(permission: Permission) -> Callable:
    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if getattr(request, "tenant", None) is None:
                return _forbidden(request, "This page belongs to a workspace.")
            if not request.user.is_authenticated:
                return login_redirect(request)
            if not request.user.has_permission(permission):
                access_denied_record(request, request.user, permission=str(permission))
                return _forbidden(request, "Your role does not allow this.")
            try:
                return view(request, *args, **kwargs)
            except PermissionDenied as e:  # a service's own rule refused: the same event and answer
                return denied_response(request, str(e) or "Not allowed.")

        wrapped.required_permission = permission
        return wrapped

    return decorator


def operator_required(view: Callable) -> Callable:
    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if getattr(request, "tenant", None) is not None or connection.schema_name != "public":
            return _forbidden(request, "The operator console is served on the platform host only.")
        if not request.user.is_authenticated:
            return login_redirect(request)
        if not (request.user.is_active and request.user.is_staff):
            access_denied_record(request, request.user, reason="not_operator")  # on the platform chain
            return _forbidden(request, "Platform operators only.")
        return view(request, *args, **kwargs)

    wrapped.operator_only = True
    return wrapped
