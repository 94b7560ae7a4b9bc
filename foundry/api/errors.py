"""Every API error is `{"error": {"code", "message", "details"?}}` with a stable code."""

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler

from foundry.errors import ServiceError
from foundry.filtering import FilterError


def error_body(code: str, message: str, details=None, position: int | None = None) -> dict:
    error = {"code": code, "message": message}
    if position is not None:
        error["position"] = position
    if details:
        error["details"] = details
    return {"error": error}


def _django_validation(exc: DjangoValidationError) -> Response:
    if hasattr(exc, "error_dict"):
        details = {
            field: [{"code": e.code or "invalid", "message": " ".join(e.messages)} for e in errors]
            for field, errors in exc.error_dict.items()
        }
        first = next(iter(exc.error_dict.values()))[0]
        return Response(error_body(first.code or "invalid", "The request has invalid fields.", details), status=400)
    return Response(error_body(exc.code or "invalid", " ".join(exc.messages)), status=400)


def _entries(value, where: str = "") -> list[dict]:
    """A field's errors as {code, message}: a list item's or a nested field's named in the
    message (`[0]: This field may not be null.`), never a Python repr of DRF's structures."""
    if isinstance(value, dict):
        return [
            entry
            for key, nested in value.items()
            for entry in _entries(nested, f"{where}[{key}]" if isinstance(key, int) else f"{where}.{key}")
        ]
    if isinstance(value, list):
        return [entry for nested in value for entry in _entries(nested, where)]
    prefix = f"{where.removeprefix('.')}: " if where else ""
    return [{"code": getattr(value, "code", "invalid"), "message": prefix + str(value)}]


def _flatten(detail) -> tuple[str, object]:
    if isinstance(detail, dict):
        details = {field: _entries(v) for field, v in detail.items()}
        first = next(iter(details.values()), [{"code": "invalid"}])[0]["code"]
        return first, details
    if isinstance(detail, list):
        return (getattr(detail[0], "code", "invalid") if detail else "invalid"), None
    return getattr(detail, "code", "invalid"), None


def _service_denied(request, message: str) -> None:
    """Recorded as the permission check records its refusals (foundry/api/permissions.py)."""
    user = getattr(request, "user", None)
    if request is not None and user is not None and user.is_authenticated:
        from apps.accounts.access import access_denied_record

        access_denied_record(request._request, user, reason=message[:200])


def api_exception_handler(exc, context):
    if isinstance(exc, ServiceError):
        return Response(error_body(exc.code, exc.message, exc.details), status=exc.status)
    if isinstance(exc, FilterError):
        return Response(error_body(exc.code, exc.message, position=exc.position), status=400)
    if isinstance(exc, DjangoValidationError):
        return _django_validation(exc)
    if isinstance(exc, DjangoPermissionDenied):  # a service's own rule refused the principal
        _service_denied(context.get("request"), str(exc))
        exc = exceptions.PermissionDenied(str(exc) or None)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    if isinstance(exc, RequestDataTooBig):  # read by the parser, past DATA_UPLOAD_MAX_MEMORY_SIZE
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE // (1024 * 1024)
        return Response(error_body("request_too_large", f"A request body is at most {limit} MiB."), status=413)
    if isinstance(exc, SuspiciousOperation):  # e.g. a form body with too many fields
        return Response(error_body("request_invalid", str(exc) or "The request is malformed."), status=400)
    response = exception_handler(exc, context)
    if response is None:
        return None  # a real bug: Django's 500 handler answers (as JSON for /api/)
    if isinstance(exc, exceptions.ValidationError):
        code, details = _flatten(exc.detail)
        response.data = error_body(code, "The request has invalid fields.", details)
    else:
        code = exc.get_codes() if isinstance(exc.get_codes(), str) else "error"
        response.data = error_body(code, str(exc.detail))
    return response
