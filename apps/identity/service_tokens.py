"""The platform's own short-lived service tokens, for internal callers of the API and MCP.

Workers calling back into the API, the MCP stdio bridge and HTTP tools that call Foundry get a
JWT signed by the platform (EdDSA, keys FOUNDRY_SERVICE_SIGNING_KEYS: `key_id:<base64 seed>`, the
first signs, all verify; public halves at /.well-known/jwks.json). A token names its audience
(`foundry-api` or `foundry-mcp`), one tenant, a Foundry role and scopes, and lives at most
MAX_TTL. It is verified by the same code as any bearer token (apps.identity.verify), and
refused on any other tenant's host.
"""

import base64
import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.conf import settings
from django.db import connection

from apps.accounts.permissions import Permission, Role, role_has_permission
from apps.identity.verify import TokenInvalid, jwt_verify
from apps.tokens.models import Scope
from foundry.errors import ServiceError
from foundry.keys import key_pairs

AUDIENCES = ("foundry-api", "foundry-mcp")
MAX_TTL = 15 * 60
DEFAULT_TTL = 5 * 60


@dataclass(frozen=True)
class PlatformKey:
    key_id: str
    private: Ed25519PrivateKey

    def jwk(self) -> dict:
        raw = self.private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
        return {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": self.key_id, "alg": "EdDSA", "use": "sig"}


@lru_cache(maxsize=4)
def _keys(configured: tuple[str, ...], secret: str, debug: bool) -> tuple[PlatformKey, ...]:
    keys = tuple(
        PlatformKey(key_id, Ed25519PrivateKey.from_private_bytes(raw))
        for key_id, raw in key_pairs("FOUNDRY_SERVICE_SIGNING_KEYS", configured)
    )
    if not keys and debug:
        # Development only: derived from the secret key, so tokens verify across restarts.
        seed = hashlib.sha256(b"foundry-service-tokens:" + secret.encode()).digest()
        keys = (PlatformKey("dev-" + hashlib.sha256(seed).hexdigest()[:8], Ed25519PrivateKey.from_private_bytes(seed)),)
    return keys


def platform_keys() -> tuple[PlatformKey, ...]:
    return _keys(tuple(settings.FOUNDRY_SERVICE_SIGNING_KEYS), settings.SECRET_KEY, settings.DEBUG)


def platform_jwks() -> dict:
    """The public key set published at /.well-known/jwks.json."""
    return {"keys": [key.jwk() for key in platform_keys()]}


def service_issuer() -> str:
    return settings.FOUNDRY_SERVICE_TOKEN_ISSUER


def service_token_issue(
    *,
    tenant_schema: str,
    service: str,
    audience: str = "foundry-api",
    role: str = Role.VIEWER,
    scopes: tuple[str, ...] = (Scope.READ,),
    ttl: int = DEFAULT_TTL,
) -> str:
    """A signed token for `service` acting in one tenant with `role` narrowed to `scopes`."""
    if audience not in AUDIENCES:
        raise ValueError(f"audience must be one of {AUDIENCES}")
    if role not in Role.values or role == Role.OWNER:
        raise ValueError("a service token carries a non-owner Foundry role")
    if not scopes or any(scope not in Scope.values for scope in scopes):
        raise ValueError(f"scopes are a non-empty subset of {Scope.values}")
    if not 0 < ttl <= MAX_TTL:
        raise ValueError(f"a service token lives 1 to {MAX_TTL} seconds")
    keys = platform_keys()
    if not keys:
        message = "The platform has no service signing key (FOUNDRY_SERVICE_SIGNING_KEYS)."
        raise ServiceError("service_keys_not_configured", message, status=503)
    tenant_id = _tenant_id(tenant_schema)
    if tenant_id is None:
        raise ValueError(f"no workspace has the schema {tenant_schema!r}")
    now = int(time.time())
    claims = {
        "iss": service_issuer(),
        "sub": f"service:{service}",
        "aud": audience,
        "tenant": tenant_schema,
        # The workspace's id too: a schema name is its slug's, and a slug is free again once a
        # workspace is purged; the next workspace given it is not the one the token was for.
        "tenant_id": tenant_id,
        "role": role,
        "scope": " ".join(sorted(set(scopes))),
        "iat": now,
        "exp": now + ttl,
        "jti": secrets.token_urlsafe(16),
    }
    return jwt.encode(claims, keys[0].private, algorithm="EdDSA", headers={"kid": keys[0].key_id})


def _tenant_id(schema: str) -> int | None:
    """The id of the workspace whose schema is `schema` (the connection's own when it is that)."""
    from apps.tenants.models import Tenant

    tenant = getattr(connection, "tenant", None)
    if isinstance(tenant, Tenant) and tenant.schema_name == schema and tenant.pk is not None:
        return tenant.pk
    return Tenant.objects.filter(schema_name=schema).values_list("pk", flat=True).first()


class ServicePrincipal:
    """Who a request with a service token acts as: the token's role, narrowed by its scopes."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    pk = None

    def __init__(self, claims: dict):
        self.claims = claims
        self.name = claims["sub"].removeprefix("service:")
        self.role = claims["role"]
        self.scopes = frozenset(claims["scope"].split())
        self.email = claims["sub"]

    def __str__(self) -> str:
        return self.name  # the audit trail names it service:<name>

    def has_permission(self, permission: Permission) -> bool:
        return role_has_permission(self.role, permission)

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


def service_token_verify(token: str, *, audience: str, header: dict | None = None) -> ServicePrincipal:
    """The principal of a platform service token for this tenant and `audience`, or TokenInvalid."""
    keys = {key.key_id: key.jwk() for key in platform_keys()}
    claims = jwt_verify(
        token, key_for=keys.get, algorithms=("EdDSA",), issuer=service_issuer(), audience=audience, header=header
    )
    tenant_id = claims.get("tenant_id")
    if (
        claims.get("tenant") != connection.schema_name
        or not isinstance(tenant_id, int)
        or isinstance(tenant_id, bool)
        or tenant_id != _tenant_id(connection.schema_name)
    ):
        raise TokenInvalid("token_tenant_invalid", "This token was issued for another workspace.")
    if claims["exp"] - claims["iat"] > MAX_TTL:
        raise TokenInvalid("token_lifetime_invalid", "A service token lives at most 15 minutes.")
    scopes = claims.get("scope")
    role = claims.get("role")
    if role not in Role.values or role == Role.OWNER or not isinstance(scopes, str):
        raise TokenInvalid("token_claims_missing", "A service token names a role and scopes.")
    if not scopes.split() or any(scope not in Scope.values for scope in scopes.split()):
        raise TokenInvalid("token_claims_missing", "A service token names known scopes.")
    if not claims["sub"].startswith("service:"):
        raise TokenInvalid("token_claims_missing", "A service token's subject is service:<name>.")
    return ServicePrincipal(claims)


def own_workspace_headers(schema: str, service: str) -> Callable[[str, str], dict[str, str]]:
    """For an agent's http tool: a short-lived, read-only service token on requests to its own
    workspace's host (the platform calling itself), and nothing on any other host — another
    workspace's included — nor, where the platform is served over TLS (FOUNDRY_SSL_REDIRECT), over
    plain http or to another port of that host. Asked per hop, so a redirect elsewhere carries no
    token."""
    from django.http.request import split_domain_port

    from apps.tenants.routing import route_for_host

    def headers(host_header: str, scheme: str = "https") -> dict[str, str]:
        host, port = split_domain_port(host_header)
        if settings.SECURE_SSL_REDIRECT and (scheme != "https" or port not in ("", "443")):
            return {}  # served over TLS: only https, on the port the platform answers on
        host = host.lower().rstrip(".")
        route = route_for_host(host) if host and host != settings.FOUNDRY_BASE_DOMAIN else None
        if route is None or route.schema_name != schema:
            return {}
        token = service_token_issue(tenant_schema=schema, service=service, role=Role.VIEWER, scopes=(Scope.READ,))
        return {"Authorization": f"Bearer {token}"}

    return headers
