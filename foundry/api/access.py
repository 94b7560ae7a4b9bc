"""Base of every API view: it must declare its access rules, or it cannot be defined; every
authenticated request spends one unit of its credential's and its tenant's rates. A refusal
already standing is answered before any of that, by ApiRefusalMiddleware."""

from django.core.exceptions import ImproperlyConfigured
from django.http import JsonResponse
from django.urls import Resolver404, resolve
from rest_framework import status
from rest_framework.exceptions import APIException
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.views import APIView

from apps.accounts.permissions import Permission
from apps.tokens.idempotency import idempotency_key_of, idempotent_answer
from apps.tokens.models import Scope
from foundry.api.errors import error_body
from foundry.api.permissions import TenantAccess
from foundry.metrics import rate_limited

_READS = frozenset({"GET", "HEAD", "OPTIONS"})
_READS_LOWER = frozenset(method.lower() for method in _READS)


class RateLimited(APIException):
    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_code = "rate_limited"
    default_detail = "Too many requests; retry after the number of seconds in Retry-After."


class RateLimiterUnavailable(APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "rate_limiter_unavailable"
    default_detail = "Changes are refused while the rate limiter cannot be reached; retry shortly."


class AnyAccept(DefaultContentNegotiation):
    """For a view whose answer is not rendered by DRF (a file, a stream in a format a query
    parameter names): no `Accept` header is refused, and its errors are JSON."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class TenantAPIView(APIView):
    """Base of every /api/v1/ view. Subclasses declare `access = {METHOD: (Permission, Scope)}`."""

    permission_classes = [TenantAccess]
    access: dict[str, tuple[Permission, Scope]] = {}
    rate_limit = None  # the Decision of this request, whose headers the response carries

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        handlers = {m.upper() for m in cls.http_method_names if hasattr(cls, m) and m not in ("options", "head")}
        missing = handlers - set(cls.access)
        if missing:
            raise ImproperlyConfigured(f"{cls.__name__} declares no access rule for {sorted(missing)}")

    def dispatch(self, request, *args, **kwargs):
        """DRF's own dispatch, but a write sent with an `Idempotency-Key` runs through
        apps/tokens/idempotency.py: its handler and the record of its answer in one transaction,
        a retry answered from that record. The key is read once the request is authenticated,
        allowed and counted (`initial`), so a caller without the right learns nothing of keys."""
        self.args, self.kwargs = args, kwargs
        request = self.initialize_request(request, *args, **kwargs)
        self.request = request
        self.headers = self.default_response_headers
        try:
            self.initial(request, *args, **kwargs)
            method = request.method.lower()
            handler = getattr(self, method, self.http_method_not_allowed)
            if method not in self.http_method_names:
                handler = self.http_method_not_allowed
            # A read, a method the view has not (a 405), or a POST that needs only the read scope
            # (it writes nothing: /validate) is answered as without a key: nothing to do once.
            keyed = (
                method not in _READS_LOWER
                and handler != self.http_method_not_allowed
                and self.access.get(request.method, (None, None))[1] != Scope.READ
            )
            key = idempotency_key_of(request) if keyed else None
            if key is None:
                response = handler(request, *args, **kwargs)
            else:
                response = idempotent_answer(
                    request=request, key=key, answer=lambda: self._answered(handler, request, *args, **kwargs)
                )
        except Exception as exc:  # noqa: BLE001 -- as DRF's own dispatch: every error is answered
            response = self.handle_exception(exc)
        self.response = self.finalize_response(request, response, *args, **kwargs)
        return self.response

    def _answered(self, handler, request, *args, **kwargs):
        """The handler's response as the client will get it, rendered (to be stored), its
        refusals answered as they always are."""
        try:
            response = handler(request, *args, **kwargs)
        except Exception as exc:  # noqa: BLE001 -- answered here, so the answer can be kept
            response = self.handle_exception(exc)
        response = self.finalize_response(request, response, *args, **kwargs)
        if hasattr(response, "render"):
            response.render()
        return response

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        # Read the body of every write, also of those whose view takes none (cancel, start an
        # export): malformed JSON is a 400 and another media type a 415 there too, before the
        # view changes anything. An empty body parses as nothing, whatever its content type.
        if request.method not in _READS and request.method != "DELETE":
            request.data  # noqa: B018 -- parsing is the point

    def check_permissions(self, request):
        # Counted once authenticated, before the role and scope are checked: a refused request
        # spends its unit too (and its access.denied event cannot be written at any rate).
        self._admit(request)
        super().check_permissions(request)

    def _admit(self, request) -> None:
        """Spend one unit of the credential's and the tenant's rates; only a tenant's signed-in
        callers are counted."""
        from apps.tenants.limits import request_admit

        if not request.user.is_authenticated or getattr(request._request, "tenant", None) is None:
            return
        self.rate_limit = request_admit(
            tenant_id=request._request.tenant.pk, principal=request.user, write=request.method not in _READS
        )
        if self.rate_limit.unavailable:
            raise RateLimiterUnavailable()
        if not self.rate_limit.allowed:
            rate_limited(request._request.tenant.schema_name, "api")
            raise RateLimited()

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if self.rate_limit is not None:
            for name, value in self.rate_limit.headers().items():
                response[name] = value
        return response


API_PREFIX = "/api/v1/"


class ApiRefusalMiddleware:
    """A refusal this process already knows stands (apps/tenants/limits.py `request_refused_early`:
    the tenant's, or the API token's by its public prefix): answered right after host routing,
    before the session, CSRF, authentication and the rest of the middleware, and before the
    token is looked up — the same 429 body and rate-limit headers as a refusal by the limiter;
    only the API's rate-counted views (TenantAPIView), not public pages under /api/v1/. A flooding client
    then costs the process a dictionary lookup and a short answer rather than a whole request
    (tests/api/test_noisy_neighbour.py)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        tenant = getattr(request, "tenant", None)
        if tenant is not None and request.path.startswith(API_PREFIX) and not tenant.is_public:
            from apps.tenants.limits import request_refused_early

            refused = request_refused_early(tenant_id=tenant.pk, authorization=request.headers.get("Authorization"))
            if refused is not None and self._counted(request):
                rate_limited(tenant.schema_name, "api")
                response = JsonResponse(error_body(RateLimited.default_code, RateLimited.default_detail), status=429)
                for name, value in refused.headers().items():
                    response[name] = value
                return response
        return self.get_response(request)

    @staticmethod
    def _counted(request) -> bool:
        """Whether the path is one of the API's rate-counted views (TenantAPIView), not a public
        page under /api/v1/ (the manifests' JSON Schemas); its match kept for the metrics' route."""
        try:
            match = resolve(request.path_info, urlconf=getattr(request, "urlconf", None))
        except Resolver404:
            return False
        view = getattr(match.func, "cls", None)
        if not (isinstance(view, type) and issubclass(view, TenantAPIView)):
            return False
        request.resolver_match = match
        return True
