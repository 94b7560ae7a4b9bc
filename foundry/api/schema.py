"""OpenAPI post-processing: the error envelope on every operation, and bearer auth; the view
serving the document."""

import re

from django.http import HttpResponse
from django.urls import Resolver404, resolve
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SCHEMA_KWARGS, SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.renderers import JSONRenderer

from apps.tokens.models import Scope

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "description": "Stable, machine-readable."},
                "message": {"type": "string"},
                "position": {"type": "integer", "description": "0-based offset into filter / order_by."},
                "details": {
                    "oneOf": [{"type": "object"}, {"type": "array", "items": {"type": "object"}}],
                    "description": "Per-field errors (object), or the problems of a document (array).",
                },
            },
        }
    },
}
_STATUSES = {
    "400": "Invalid request: fields, filter, order_by or page token.",
    "401": "Missing, invalid, expired or revoked token.",
    "403": "The role or the token's scopes do not allow this.",
    "404": "No such object in this workspace.",
    "405": "Method not allowed.",
    "406": "The `Accept` header asks for a format this operation does not answer in.",
    "415": "Send JSON.",
    "429": "Too many requests.",
}
_UNAVAILABLE = "`rate_limiter_unavailable`: the rate limiter cannot be reached; retry after `Retry-After`."
# draft-ietf-httpapi-ratelimit-headers, as foundry/ratelimit.py sends them on every counted answer.
_RATE_HEADERS = {
    "RateLimit": {
        "schema": {"type": "string"},
        "description": 'What is left of the caller\'s rate: `"<policy>";r=<remaining>;t=<seconds to full>`.',
    },
    "RateLimit-Policy": {
        "schema": {"type": "string"},
        "description": 'The caller\'s rate: `"<policy>";q=<requests>;w=<window seconds>`.',
    },
}
_RETRY_AFTER = {"schema": {"type": "integer", "minimum": 1}, "description": "Whole seconds to wait before retrying."}
_REPLAYED = {
    "schema": {"type": "string", "enum": ["true"]},
    "description": "The answer kept for this request's `Idempotency-Key`, sent again: the write was done once.",
}
_IDEMPOTENCY_KEY = {
    "in": "header",
    "name": "Idempotency-Key",
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"},
    "description": "Any unique text (a UUID): a retry with the same key within 24 hours gets the first "
    "success's answer again, with `Idempotent-Replayed: true`, instead of doing the write twice (docs/api.md).",
}
_IDEMPOTENCY_ERRORS = {
    "400": "`idempotency_key_invalid`: the key is not 1 to 255 visible ASCII characters.",
    "409": "`idempotency_key_in_use`: a request with this key is still being answered; retry shortly. "
    "`idempotency_key_stale`: it was done, but the caller's role or scopes changed since.",
    "422": "`idempotency_key_reused`: the key was sent with another method, path, query or body.",
}


def add_error_responses(result, generator, request, public):
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = _ERROR
    result["components"].setdefault("securitySchemes", {})["bearerToken"] = {
        "type": "http",
        "scheme": "bearer",
        "description": "An API token of this workspace: `af_…`.",
    }
    result["security"] = [{"bearerToken": []}]
    _strict_bodies(result["components"]["schemas"])
    ref = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            operation["security"] = [{"bearerToken": []}]
            _body_required(operation, result["components"]["schemas"])
            for status, description in _STATUSES.items():
                operation["responses"].setdefault(status, {"description": description, **ref})
            if method not in ("get", "head", "options"):
                # A write: refused while the rate limiter is away (reads go on), and its body is
                # read whether it takes one or not (TenantAPIView.initial), DELETE's excepted.
                unavailable = operation["responses"].setdefault("503", {"description": _UNAVAILABLE, **ref})
                if unavailable["description"] != _UNAVAILABLE:
                    unavailable["description"] += " Or " + _UNAVAILABLE
                if "requestBody" in operation or method != "delete":
                    operation["responses"].setdefault("413", {"description": "The body is larger than 4 MiB.", **ref})
                if not _writes_nothing(path, method):
                    operation.setdefault("parameters", []).append(_IDEMPOTENCY_KEY)
                    for status, description in _IDEMPOTENCY_ERRORS.items():
                        response = operation["responses"].setdefault(status, {"description": description, **ref})
                        if description not in response["description"]:
                            response["description"] += " Or " + description
            for status, response in operation["responses"].items():
                headers = response.setdefault("headers", {})
                headers.update(_RATE_HEADERS)
                if status == "429":
                    headers["Retry-After"] = _RETRY_AFTER
                if (
                    status.startswith("2")
                    and method not in ("get", "head", "options")
                    and not _writes_nothing(path, method)
                ):
                    headers["Idempotent-Replayed"] = _REPLAYED
            # Operation-specific errors (declared with OpenApiResponse(description=...)) get the envelope.
            for status, response in operation["responses"].items():
                if status >= "400" and "content" not in response and status not in ("414", "431"):
                    response.update(ref)
            # Refused by the HTTP server (gunicorn's request limits) before the app sees them.
            operation["responses"].setdefault("414", {"description": "Request line too long."})
            operation["responses"].setdefault("431", {"description": "Request headers too large."})
    return result


def _writes_nothing(path: str, method: str) -> bool:
    """Whether the operation needs only the read scope (a POST that writes nothing: /validate),
    which TenantAPIView.dispatch answers without its Idempotency-Key."""
    from foundry.api.access import TenantAPIView

    try:
        match = resolve(re.sub(r"\{[^}]+\}", "0", path))
    except Resolver404:
        return False
    view = getattr(match.func, "view_class", None) or getattr(match.func, "cls", None)
    if not (isinstance(view, type) and issubclass(view, TenantAPIView)):
        return False
    return view.access.get(method.upper(), (None, None))[1] == Scope.READ


def _body_required(operation: dict, schemas: dict) -> None:
    """A body whose schema requires a field is itself required (drf-spectacular leaves a PATCH's
    optional: a client generated from the document would send none, which is refused)."""
    body = operation.get("requestBody")
    if body is None:
        return
    for media in body.get("content", {}).values():
        ref = media.get("schema", {}).get("$ref", "")
        if schemas.get(ref.rpartition("/")[2], {}).get("required"):
            body["required"] = True


def _strict_bodies(schemas: dict) -> None:
    """Request bodies of StrictInput serializers take no other keys (`field_unknown`). A PATCH
    body is validated whole (no partial=True anywhere): what its serializer requires, the Patched
    component requires too (drf-spectacular makes every field optional there)."""
    from foundry.api.fields import StrictInput

    pending, classes = list(StrictInput.__subclasses__()), []
    while pending:
        cls = pending.pop()
        classes.append(cls)
        pending += cls.__subclasses__()
    for cls in classes:
        for component in (f"{cls.__name__}Request", f"Patched{cls.__name__}Request"):
            if component in schemas:
                schemas[component]["additionalProperties"] = False
        patched = schemas.get(f"Patched{cls.__name__}Request")
        if patched is not None:
            required = [name for name, field in cls().fields.items() if field.required and not field.read_only]
            if required:
                patched["required"] = required


# The rendered document by media type: the same for every host and request, and ~70 ms of CPU to
# generate, which an anonymous client (the limiter counts no one unauthenticated) could repeat.
_RENDERED: dict[str, tuple[bytes, str, str]] = {}


class JsonRefusals:
    """A view whose refusals (4xx, 5xx) are rendered as JSON, like every API error, whatever
    renderer its successes use (an OpenAPI document, the Swagger UI page)."""

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if response.status_code >= 400:
            response.accepted_renderer, response.accepted_media_type = JSONRenderer(), "application/json"
        return response


class SchemaView(JsonRefusals, SpectacularAPIView):
    """The OpenAPI document (YAML, or JSON by `Accept` / `?format=json`); its refusals (a method
    not allowed, a format it has not, an `Accept` it cannot meet) are JSON like every API error,
    not rendered as an OpenAPI document. Generated once per process and media type: the API has
    one version and one language, so `?version=` and `?lang=` change nothing."""

    @extend_schema(**SCHEMA_KWARGS)
    def get(self, request, *args, **kwargs):
        # Keyed by the renderer's own media type, never the client's Accept with its parameters
        # (`application/json; nonce=N` made an entry of ~0.5 MB, and a generation, per N).
        key = request.accepted_renderer.media_type
        cached = _RENDERED.get(key)
        if cached is None:
            response = self.finalize_response(request, self._get_schema_response(request))
            response.render()
            if response.status_code != 200:
                return response
            cached = _RENDERED[key] = (
                response.content,
                response["Content-Type"],
                response.get("Content-Disposition", ""),
            )
        content, content_type, disposition = cached
        return HttpResponse(content, content_type=content_type, headers={"Content-Disposition": disposition})

    def _get_version_parameter(self, request):
        return None


class DocsView(JsonRefusals, SpectacularSwaggerSplitView):
    """The Swagger UI page: GET and HEAD only, its refusals JSON like the document's. OPTIONS,
    answered with DRF's metadata, went to the page's HTML renderer with no template: a 500."""

    http_method_names = ["get", "head"]
