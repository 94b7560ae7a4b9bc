"""The ASGI door of /mcp: which workspace, which caller, from where — before the MCP SDK sees
a byte of the request.

- Host: resolved with the same lookup as every other request (apps.tenants.routing); a host that
  is no active workspace gets 421 Misdirected Request (DNS-rebinding protection: a page on some
  other name cannot reach us through a rebound address). The SDK's own host check is static and
  cannot list tenants, so it is replaced by this one.
- Origin: absent (not a browser), or the workspace's own origin, or one of
  FOUNDRY_MCP_ALLOWED_ORIGINS; anything else is 403.
- Authorization: `Bearer` with an API token, an IdP access token or a `foundry-mcp` service
  token (apps.identity.bearer.principal_for_bearer, as on the API). Without one: 401 with
  `WWW-Authenticate` naming the OAuth protected-resource metadata (RFC 9728). The MCP session
  id is never a credential: every request carries its token (the server is stateless).

- Rate limits: once authenticated, one unit of the credential's and the tenant's rates per HTTP
  request (apps.tenants.limits.request_admit); refused: 429 `rate_limited` (503
  `rate_limiter_unavailable` when Redis cannot be asked) with the RateLimit headers and
  Retry-After, before the SDK sees the request. A request whose JSON-RPC body calls a tool counts
  as a write (refused while Redis is unreachable); everything else is a read.

The resolved tenant and principal travel in the ASGI scope (`foundry.tenant`,
`foundry.principal`, `foundry.request`) to the tools (foundry/mcp/context.py).
"""

import io
import json

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.core.handlers.asgi import ASGIRequest
from django.db import close_old_connections, connection
from django.http.request import split_domain_port
from mcp.server.transport_security import DEFAULT_MAX_REQUEST_BODY_SIZE
from mcp_types import INVALID_PARAMS, INVALID_REQUEST, METHOD_NOT_FOUND, PROTOCOL_VERSION_META_KEY
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS

from apps.identity.bearer import principal_for_bearer
from apps.identity.verify import TokenInvalid
from foundry.mcp.jsonrpc import (
    METHOD_SHOWN,
    PARAMS_NOT_OBJECT,
    SURROGATE_REFUSED,
    DuplicateKey,
    id_invalid,
    message_read,
    method_too_long,
    params_not_object,
    surrogate_found,
)
from foundry.metrics import rate_limited
from foundry.proxies import forwarded_apply
from foundry.telemetry import tenant_bound

AUDIENCE = "foundry-mcp"
METADATA_PATH = "/.well-known/oauth-protected-resource"


async def reply(send, status: int, code: str, message: str, headers: list | None = None) -> None:
    """A refusal of the gateway's (and of /mcp's plain-HTTP redirect): JSON with a stable code."""
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    start = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": start + (headers or [])})
    await send({"type": "http.response.body", "body": body})


class Refused(Exception):
    def __init__(self, status: int, code: str, message: str, challenge: str | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.challenge = status, code, message, challenge


async def _jsonrpc_refuse(
    send, request_id, message: str, headers: list, code: int = INVALID_PARAMS, *, status: int = 400, data=None
) -> None:
    """A JSON-RPC error (-32602 unless told) for a message the gateway refuses before the SDK reads it."""
    error = {"code": code, "message": message, **({} if data is None else {"data": data})}
    body = json.dumps({"jsonrpc": "2.0", "id": request_id, "error": error}).encode()
    start = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": start + headers})
    await send({"type": "http.response.body", "body": body})


# The SDK answers JSON that is no JSON-RPC message (a batch on the 2025 protocols, params that are
# no object) -32602 with id null and pydantic's text: its models' names, library version and the
# caller's body. JSON-RPC 2.0 (§5, §5.1) answers a message that is no request object -32600 (id
# null), and a request whose params are wrong -32602 at the request's id.
_NOT_A_MESSAGE = (
    'Invalid request: the body is not one JSON-RPC 2.0 message (an object with jsonrpc "2.0" and a'
    " method; batches are not accepted)."
)


def _validation_dump_replaced(body: bytes, payload: object) -> bytes | None:
    """The SDK's 400 for a message it could not read, its pydantic dump replaced by a plain
    message with JSON-RPC's code and id (see above); None for any other answer (left as it is)."""
    try:
        answer = json.loads(body)
    except ValueError:
        return None
    error = answer.get("error") if isinstance(answer, dict) else None
    if not isinstance(error, dict) or not str(error.get("message", "")).startswith("Validation error:"):
        return None
    if params_not_object(payload):
        request_id, error = payload["id"], {"code": INVALID_PARAMS, "message": PARAMS_NOT_OBJECT}
    else:
        request_id, error = None, {"code": INVALID_REQUEST, "message": _NOT_A_MESSAGE}
    return json.dumps({**answer, "id": request_id, "error": error}).encode()


def caller_resolve(scope) -> dict:
    """The scope entries for the tools, or Refused. Sync: it uses the ORM and Django's request.
    A tool that waits (run_agent) calls it again before each look, as a new request would be."""
    from apps.tenants.routing import route_for_host

    close_old_connections()
    request = ASGIRequest(scope, io.BytesIO())
    forwarded_apply(request.META, settings.FOUNDRY_TRUSTED_PROXIES)  # the client's address, as for the API
    try:
        host_header = request.get_host()
    except DisallowedHost:
        raise Refused(421, "unknown_host", "No workspace is served at this address.") from None
    host = split_domain_port(host_header)[0].lower().rstrip(".")
    route = route_for_host(host) if host and host != settings.FOUNDRY_BASE_DOMAIN else None
    if route is None:
        raise Refused(421, "unknown_host", "No workspace is served at this address.")
    # The request's span names its workspace from here, refused or not, as Django's requests do.
    with tenant_bound(route.tenant_id, route.slug):
        return _caller_admitted(request, host_header, route)


def _caller_admitted(request: ASGIRequest, host_header: str, route) -> dict:
    from apps.tenants.middleware import _tenant_from_route

    if not route.is_active:  # as on every other path (apps/tenants/middleware.py)
        raise Refused(
            403, "tenant_suspended", f"The workspace “{route.name}” is suspended. Contact your administrator."
        )
    own_origin = f"{request.scheme}://{host_header}"
    origin = request.headers.get("Origin")
    if origin is not None and origin != own_origin and origin not in settings.FOUNDRY_MCP_ALLOWED_ORIGINS:
        raise Refused(403, "origin_refused", f"Requests from {origin[:100]!r} are not accepted here.")
    tenant = _tenant_from_route(route)
    request.tenant = tenant
    kind, _, raw = request.headers.get("Authorization", "").partition(" ")
    connection.set_tenant(tenant)
    try:
        if kind.lower() != "bearer" or not raw.strip():  # the scheme is case-insensitive (RFC 9110)
            raise Refused(401, "unauthenticated", "Send 'Authorization: Bearer <token>'.", _challenge(own_origin))
        principal, _credential = principal_for_bearer(
            raw.strip(), audience=AUDIENCE, request=request, resource=f"{own_origin}/mcp"
        )
    except TokenInvalid as exc:
        challenge = _challenge(own_origin, 'error="invalid_token"', f'error_description="{exc.code}"')
        raise Refused(401, exc.code, exc.message, challenge) from None
    finally:
        connection.set_schema_to_public()
    request.user = principal
    return {"foundry.tenant": tenant, "foundry.principal": principal, "foundry.request": request}


def _challenge(origin: str, *params: str) -> str:
    """RFC 6750's challenge (the connection on the workspace's schema). It names the RFC 9728
    metadata only where the workspace has an authorization server to name there (its identity
    provider): MCP's authorization asks that document for at least one, and a client sent to one
    without would start OAuth discovery only to find nothing to sign in with."""
    from apps.identity.oidc import sso_config_recent

    if sso_config_recent() is not None:
        params = (f'resource_metadata="{origin}{METADATA_PATH}/mcp"', *params)
    return f"Bearer {', '.join(params)}" if params else "Bearer"


_WRITE_METHODS = frozenset({"tools/call"})
# Bytes read to tell a read from a write and check the message (an id, lone surrogates): as many
# as the SDK takes, which refuses a longer body (413). Were it fewer, a body between the two went
# unchecked, a null id answered as a notification (nothing), a lone surrogate as a parse error.
_BODY_PEEK_LIMIT = DEFAULT_MAX_REQUEST_BODY_SIZE


async def _body_peek(receive) -> tuple[object, bytes | None]:
    """(a `receive` that replays what was read, the body's bytes: None when longer than
    _BODY_PEEK_LIMIT or cut short). Read on the event loop once the caller is known (a caller with
    no credential, or a host that is no workspace, is refused before it: no bytes waited for, none
    parsed), and parsed in a worker thread (_classified), so no request blocks the loop others are
    served on."""
    messages, size, complete = [], 0, False
    while size <= _BODY_PEEK_LIMIT:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        size += len(message.get("body", b""))
        if not message.get("more_body", False):
            complete = True
            break
    raw = b"".join(m.get("body", b"") for m in messages) if complete else None

    async def replay():
        return messages.pop(0) if messages else await receive()

    return replay, raw


def _classified(raw: bytes | None) -> tuple[bool, object, DuplicateKey | None]:
    """(whether the request is a write, the JSON body: None when unread, too long or not JSON;
    a key it names twice in an object, which the SDK's parser would read as its last value).
    Read as the SDK would read it (each object's last value), so its id and what it asks are
    known; a message whose own `id` is named twice has no id (`duplicate.message_id`)."""
    if raw is None:
        return True, None, None
    try:
        payload, duplicate = message_read(raw)
    except (ValueError, RecursionError):  # not JSON, or nested past the parser's depth: the SDK refuses it
        return True, None, None
    calls = payload if isinstance(payload, list) else [payload]
    # A method that is no text (a list, an object) is no write here; the SDK refuses it.
    write = any(isinstance(c, dict) and isinstance(m := c.get("method"), str) and m in _WRITE_METHODS for c in calls)
    return write, payload, duplicate


def _admit(resolved: dict, write: bool):
    from apps.tenants.limits import request_admit

    try:
        return request_admit(
            tenant_id=resolved["foundry.tenant"].pk, principal=resolved["foundry.principal"], write=write
        )
    finally:
        close_old_connections()


def _classified_and_admitted(resolved: dict, raw: bytes | None):
    """What an admitted caller asks, whether its rate allows it, and what refuses the message
    before the SDK reads it: a lone surrogate (the SDK cannot parse it), a key named twice."""
    tenant = resolved["foundry.tenant"]
    with tenant_bound(tenant.pk, tenant.slug):  # the rate limiter's calls name it too
        write, payload, duplicate = _classified(raw)
        return _admit(resolved, write), payload, surrogate_found(payload), duplicate


def _admitted_unread(resolved: dict):
    """Whether the caller's rate allows a request whose body will not be read (refused as it is
    sent): it spends as a write, as the REST API spends a refused POST."""
    tenant = resolved["foundry.tenant"]
    with tenant_bound(tenant.pk, tenant.slug):
        return _admit(resolved, True)


async def _rate_refused(send, resolved: dict, decision, limit_headers) -> bool:
    """Answer 503 or 429 when the rate limiter refused the request (True), else nothing."""
    if decision.unavailable:
        message = "Tool calls are refused while the rate limiter cannot be reached; retry shortly."
        await reply(send, 503, "rate_limiter_unavailable", message, limit_headers)
        return True
    if not decision.allowed:
        rate_limited(resolved["foundry.tenant"].schema_name, "mcp")
        message = "Too many requests; retry after the number of seconds in Retry-After."
        await reply(send, 429, "rate_limited", message, limit_headers)
        return True
    return False


def _headers_encoded(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(name.lower().encode(), value.encode()) for name, value in headers.items()]


# What a browser client at an allowed origin (FOUNDRY_MCP_ALLOWED_ORIGINS) may send and read.
_CORS_EXPOSED = b"Mcp-Session-Id, WWW-Authenticate, RateLimit, RateLimit-Policy, Retry-After, X-Request-ID"
_CORS_MAX_AGE = b"600"


def _json_content(scope) -> bool:
    """Whether the request says its body is JSON (`application/json`, with parameters or not)."""
    value = next((v for name, v in scope.get("headers", []) if name == b"content-type"), b"")
    return value.decode("latin-1").split(";", 1)[0].strip().lower() == "application/json"


def _json_content_spelt(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The headers with a JSON Content-Type's media type in lower case, its parameters kept. A
    media type is case-insensitive (RFC 9110 8.3.1); the SDK compares it as written, and refused
    `Application/Json` with a 415 of its own after the gateway had admitted it."""
    spelt = []
    for name, value in headers:
        if name == b"content-type":
            media, sep, parameters = value.partition(b";")
            value = media.strip().lower() + sep + parameters
        spelt.append((name, value))
    return spelt


_VERSIONS = (*HANDSHAKE_PROTOCOL_VERSIONS, *MODERN_PROTOCOL_VERSIONS)


def _version_unsupported(scope) -> str | None:
    """The refusal of an MCP-Protocol-Version this server does not speak, or None (none given: the
    transport assumes its default). The SDK took any unknown value for the 2026 protocol, and
    refused the request for a `params._meta` it did not need."""
    value = next((v for name, v in scope.get("headers", []) if name == b"mcp-protocol-version"), None)
    if value is None or value.decode("latin-1") in _VERSIONS:
        return None
    shown = ascii(value.decode("latin-1")[:40])
    return f"Unsupported MCP-Protocol-Version {shown}: this server speaks {', '.join(_VERSIONS)}."


def _versioned_in_meta(payload: object) -> bool:
    """Whether the message names its protocol version in `params._meta` (the 2026 envelope)."""
    params = payload.get("params") if isinstance(payload, dict) else None
    meta = params.get("_meta") if isinstance(params, dict) else None
    return isinstance(meta, dict) and PROTOCOL_VERSION_META_KEY in meta


def _allowed_origin(scope) -> bytes | None:
    """The request's Origin when it is one of FOUNDRY_MCP_ALLOWED_ORIGINS (the workspace's own
    origin needs no CORS: same-origin); None otherwise."""
    origin = next((value for name, value in scope.get("headers", []) if name == b"origin"), None)
    if origin is None or origin.decode("latin-1") not in settings.FOUNDRY_MCP_ALLOWED_ORIGINS:
        return None
    return origin


def _cors_send(send, origin: bytes):
    """`send` with the CORS headers that let the allowed `origin` read every answer, refusals
    included (a 401's WWW-Authenticate starts the OAuth discovery)."""

    async def cors_send(message):
        if message["type"] == "http.response.start":
            cors = [
                (b"access-control-allow-origin", origin),
                (b"access-control-expose-headers", _CORS_EXPOSED),
                (b"vary", b"Origin"),
            ]
            message = {**message, "headers": [*message.get("headers", []), *cors]}
        await send(message)

    return cors_send


async def _preflight(scope, send, origin: bytes) -> None:
    """A CORS preflight from an allowed origin: POST with whatever headers it asks for (its
    requests are authenticated like any other; the preflight itself carries no credential)."""
    asked = next((value for name, value in scope.get("headers", []) if name == b"access-control-request-headers"), b"")
    headers = [
        (b"access-control-allow-origin", origin),
        (b"access-control-allow-methods", b"POST"),
        (b"access-control-allow-headers", asked[:2000]),
        (b"access-control-max-age", _CORS_MAX_AGE),
        (b"vary", b"Origin, Access-Control-Request-Headers"),
        (b"content-length", b"0"),
    ]
    await send({"type": "http.response.start", "status": 204, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


class McpGateway:
    """Wraps the SDK's Streamable HTTP app (see the module docstring)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        origin = _allowed_origin(scope)
        if origin is not None:
            if scope.get("method") == "OPTIONS":
                return await _preflight(scope, send, origin)
            send = _cors_send(send, origin)
        if scope.get("method") != "POST":
            # A stateless server never writes to a stream of its own (GET), has no session to end
            # (DELETE), and takes nothing else: POST is the one method (RFC 9110: Allow says so).
            message = "This server sends no stream of its own and keeps no session: POST JSON-RPC messages to it."
            return await reply(send, 405, "method_not_allowed", message, [(b"allow", b"POST")])
        try:
            # Who is calling, from the headers alone: a host that is no workspace, or a caller
            # without a valid credential, is refused before a byte of its body is waited for (one
            # sending 4 MB slowly, or never, would hold the connection and the bytes read so far).
            resolved = await sync_to_async(caller_resolve, thread_sensitive=False)(scope)
        except Refused as refused:
            headers = [(b"www-authenticate", refused.challenge.encode())] if refused.challenge else []
            return await reply(send, refused.status, refused.code, refused.message, headers)
        if not _json_content(scope):
            # Counted like any authenticated request (docs/limits.md), then refused: the SDK would
            # answer a plain-text 400 ("Invalid Content-Type header"), no code to act on.
            decision = await sync_to_async(_admitted_unread, thread_sensitive=False)(resolved)
            limit_headers = _headers_encoded(decision.headers())
            if await _rate_refused(send, resolved, decision, limit_headers):
                return None
            message = "Send JSON-RPC messages with Content-Type: application/json."
            return await reply(send, 415, "unsupported_media_type", message, limit_headers)
        receive, raw = await _body_peek(receive)
        # What it asks, and whether its rate allows it (a write costs more than a read).
        decision, payload, surrogate, duplicate = await sync_to_async(_classified_and_admitted, thread_sensitive=False)(
            resolved, raw
        )
        limit_headers = _headers_encoded(decision.headers())
        if await _rate_refused(send, resolved, decision, limit_headers):
            return None

        held: list[dict] = []

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *limit_headers]}
                if message["status"] == 400:  # perhaps the SDK's pydantic dump: held until its body is seen
                    held.append(message)
                    return
            elif held and message["type"] == "http.response.body":
                start, body = held.pop(), _validation_dump_replaced(message.get("body", b""), payload)
                if body is not None:
                    headers = [(k, v) for k, v in start["headers"] if k != b"content-length"]
                    start = {**start, "headers": [*headers, (b"content-length", str(len(body)).encode())]}
                    message = {**message, "body": body}
                await send(start)
            await send(message)

        if id_invalid(payload):
            message = "Invalid request: an id is a string or an integer."
            return await _jsonrpc_refuse(send, None, message, limit_headers, INVALID_REQUEST)
        if surrogate or duplicate:
            request_id = payload.get("id") if isinstance(payload, dict) else None
            if duplicate and duplicate.message_id:  # the message's own id named twice: which is unclear
                request_id = None
            message = SURROGATE_REFUSED if surrogate else f"{duplicate.code}: {duplicate}"
            return await _jsonrpc_refuse(send, request_id, message, limit_headers)
        if params_not_object(payload):  # the 2026 protocol's reader says so its own way, id null
            return await _jsonrpc_refuse(send, payload["id"], PARAMS_NOT_OBJECT, limit_headers)
        if method_too_long(payload):  # as the SDK answers an unknown method, its name cut: no echo of 4 MB
            name = payload["method"][:METHOD_SHOWN]
            return await _jsonrpc_refuse(
                send, payload["id"], "Method not found", limit_headers, METHOD_NOT_FOUND, status=200, data=name
            )
        # A 2026 request names its version in params._meta too: the SDK answers one it does not speak
        # -32022 with the versions it does, which a newer client negotiates down with.
        if not _versioned_in_meta(payload) and (unsupported := _version_unsupported(scope)):
            request_id = payload.get("id") if isinstance(payload, dict) and not id_invalid(payload) else None
            return await _jsonrpc_refuse(send, request_id, unsupported, limit_headers, INVALID_REQUEST)

        tenant = resolved["foundry.tenant"]
        with tenant_bound(tenant.pk, tenant.slug):  # the request's spans and logs name their tenant
            headers = _json_content_spelt(scope.get("headers", []))
            await self.app({**scope, **resolved, "headers": headers}, receive, send_with_headers)
