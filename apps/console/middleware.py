"""Console form posts spend the workspace's request rate, as API requests do.

Every POST (PUT, PATCH, DELETE) to a console page of a workspace by a signed-in member spends one
unit of the member's bucket and the workspace's (apps/tenants/limits.py `request_admit`), so a
script driving the console is held to the plan like one driving the API. Pages read (GET, HEAD)
are not counted, the API counts its own requests (foundry/api/access.py), anonymous posts (the
sign-in form) are counted by `login_admit`, and signing out is never refused.

Refused: a 429 page (`rate_limited`) with Retry-After and the RateLimit headers; when Redis cannot
be asked, as FOUNDRY_RATELIMIT_ON_REDIS_ERROR_WRITES says (by default a 503 page,
`rate_limiter_unavailable`). Admitted posts carry the RateLimit headers too.
"""

from django.http import HttpRequest, HttpResponse
from rest_framework.views import APIView

from apps.accounts.views import logout_view
from apps.tenants.limits import refusal_response, request_admit

_READS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


class ConsoleRateLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        decision = getattr(request, "console_rate_limit", None)
        if decision is not None and decision.allowed:
            for name, value in decision.headers().items():
                response[name] = value
        return response

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs) -> HttpResponse | None:
        if request.method in _READS or getattr(request, "tenant", None) is None:
            return None
        view_class = getattr(view_func, "cls", None)
        if isinstance(view_class, type) and issubclass(view_class, APIView):
            return None  # the API's own check counts it
        if not request.user.is_authenticated or view_func is logout_view:
            return None  # signing out always works: a flood, or Redis away, must not keep a session open
        decision = request.console_rate_limit = request_admit(
            tenant_id=request.tenant.pk, principal=request.user, write=True
        )
        if not decision.allowed:
            return refusal_response(
                request,
                decision,
                surface="console",
                code="rate_limited",
                too_many="Too many changes in a short time.",
                unavailable="Changes cannot be saved for a moment. Try again shortly; pages still show.",
            )
        return None
