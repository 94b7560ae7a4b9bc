from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed

from apps.identity.bearer import principal_for_bearer
from apps.identity.verify import TokenInvalid


class ApiTokenAuthentication(BaseAuthentication):
    """`Authorization: Bearer …` on the host of one workspace: a Foundry API token (`af_…`), an
    access token from the workspace's identity provider, or a platform service token (JWTs,
    apps/identity/bearer.py)."""

    keyword = "Bearer"
    audience = "foundry-api"

    def authenticate(self, request):
        header = request.headers.get("Authorization", "")
        if not header:
            return None
        kind, _, raw = header.partition(" ")
        raw = raw.strip()
        if kind.lower() != self.keyword.lower() or not raw:  # the scheme is case-insensitive (RFC 9110)
            raise AuthenticationFailed("Use 'Authorization: Bearer <token>'.", code="invalid_authorization_header")
        if getattr(request._request, "tenant", None) is None:
            raise AuthenticationFailed("Tokens are valid on a workspace host only.", code="invalid_token")
        try:
            return principal_for_bearer(raw, audience=self.audience, request=request._request)
        except TokenInvalid as exc:
            raise AuthenticationFailed(exc.message, code=exc.code) from None

    def authenticate_header(self, request):
        return f'{self.keyword} realm="api"'


class ApiTokenScheme(OpenApiAuthenticationExtension):
    """How the OpenAPI schema names this authentication (foundry/api/schema.py adds it to every operation)."""

    target_class = ApiTokenAuthentication
    name = "bearerToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API token of this workspace (`af_…`), an access token from the workspace's "
            "identity provider (a JWT for its configured audience), or a platform service token.",
        }
