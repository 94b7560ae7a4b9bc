"""Error responses with a stable code, as JSON for API clients and as a page for people."""

from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.template.loader import render_to_string


def wants_json(request: HttpRequest) -> bool:
    if request.path.startswith(("/api/", "/mcp")) or request.path == "/api":
        return True
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/html" not in accept


def style_nonce(request: HttpRequest) -> str:
    """This response's CSP nonce (made by reading it: the policy then names it), or "" where
    the Content-Security-Policy middleware has not run."""
    nonce = getattr(request, "csp_nonce", None)
    return str(nonce) if nonce is not None else ""


def error_response(
    request: HttpRequest, *, status: int, code: str, message: str, headers: dict | None = None
) -> HttpResponse:
    if wants_json(request):
        response = JsonResponse({"error": {"code": code, "message": message}}, status=status)
    else:
        # Its style inline, allowed by this response's nonce: a host that serves no static file
        # (an unknown one, a suspended workspace) still gets a styled page (foundry/csp.py).
        html = render_to_string(
            "errors/error.html", {"status": status, "code": code, "message": message, "nonce": style_nonce(request)}
        )
        response = HttpResponse(html, status=status)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def not_found(request: HttpRequest, exception=None) -> HttpResponse:
    return error_response(request, status=404, code="not_found", message="There is nothing at this address.")


def bad_request(request: HttpRequest, exception=None) -> HttpResponse:
    """Django's 400 (a host not allowed, a request too large to parse, a suspicious operation):
    JSON under /api/ and /mcp, the platform's page elsewhere (its style allowed by the nonce)."""
    return error_response(request, status=400, code="bad_request", message="The request could not be understood.")


def permission_denied(request: HttpRequest, exception=None) -> HttpResponse:
    return error_response(request, status=403, code="forbidden", message="You may not do this.")


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """Django's CSRF refusal as the platform's own error page (or JSON), not Django's page."""
    return error_response(
        request,
        status=403,
        code="csrf_failed",
        message="This form has expired or did not come from this site. Reload the page and try again.",
    )


def server_error(request: HttpRequest) -> HttpResponse:
    # No template context or database here: this must work when everything else is failing.
    if wants_json(request):
        body = {"error": {"code": "server_error", "message": "Something went wrong on our side. It has been logged."}}
        return JsonResponse(body, status=500)
    return HttpResponse(render_to_string("500.html", {"nonce": style_nonce(request)}), status=500)


class CodedError(Exception):
    """A refusal or failure with a stable `code` and a plain-language `message`."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class ServiceError(Exception):
    """A refusal by a service, with the HTTP status and stable code an API answers it with.

    `details` is JSON-ready (e.g. the list of problems in a document)."""

    status = 400

    def __init__(self, code: str, message: str, *, details=None, status: int | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details
        if status is not None:
            self.status = status


class MethodNotAllowedMiddleware:
    """A console view's refusal of a method (`require_POST`, `require_safe`: Django's bare
    HttpResponseNotAllowed, an empty text/html body) answered as every other refusal is: the
    platform's page, or JSON, with the code `method_not_allowed` (the API's and MCP's) and the
    `Allow` header kept."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not isinstance(response, HttpResponseNotAllowed) or response.content:
            return response
        return error_response(
            request,
            status=405,
            code="method_not_allowed",
            message=f"This address answers {response['Allow'] or 'no'} requests only.",
            headers={"Allow": response["Allow"]},
        )
