"""What a tool or resource runs with: the workspace and principal the gateway resolved, the
permission matrix, and the tenant's schema on a database connection of a worker thread."""

import uuid
from collections.abc import Callable
from typing import Any

from asgiref.sync import sync_to_async
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import close_old_connections, connection
from django.http import Http404
from mcp import MCPError
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import INVALID_PARAMS

from apps.accounts.permissions import Permission
from apps.audit.history import history_actor
from apps.audit.models import Outcome
from apps.audit.services import audit_record
from foundry.errors import CodedError, ServiceError
from foundry.filtering import FilterError
from foundry.request_context import current_request_id, request_id_bound

# JSON-RPC error of a resource read refused by the matrix (the implementation-defined band
# -32000..-32019; the SDK uses -32000 and -32001). Any other refusal, not found included, is
# -32602 (invalid params), as the SDK answers an unknown resource.
RESOURCE_FORBIDDEN = -32003


class Refusal(Exception):
    """A request the caller can correct: a stable code (as on the API), a plain message, and for
    a filter or order the 0-based position in it that is at fault, as the API gives it."""

    def __init__(self, code: str, message: str, position: int | None = None):
        if position is not None and f"position {position}" not in message:
            message = f"{message} (at position {position})"
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.position = code, message, position


def _values(request_context) -> dict:
    scope = getattr(request_context.request, "scope", None)
    if not scope or "foundry.principal" not in scope:
        raise Refusal("unauthenticated", "this is served over the authenticated /mcp endpoint only.")
    return scope


def refusal(code: str, message: str) -> ToolError:
    """A tool error result the model can read: `code: message` (codes as on the API)."""
    return ToolError(f"{code}: {message}")


def _denied(principal, request, target: tuple[str, str], data: dict) -> None:
    audit_record(
        action="access.denied",
        actor=principal,
        target=target,
        data={"via": "mcp", **data},
        outcome=Outcome.DENIED,
        request=request,
    )


def _check(principal, request, target: tuple[str, str], permission: Permission, scope: str) -> None:
    denied = None
    if not principal.has_permission(permission):
        denied = {"permission": str(permission)}
    elif hasattr(principal, "has_scope") and not principal.has_scope(scope):
        denied = {"scope": str(scope)}
    if denied:
        _denied(principal, request, target, denied)
        needed = f"the '{scope}' scope" if "scope" in denied else str(permission)
        raise Refusal("forbidden", f"{target[1]} needs {needed}.")


async def _run(values: dict, target: tuple[str, str], permission: Permission, scope: str, fn: Callable, args):
    tenant, principal, request = values["foundry.tenant"], values["foundry.principal"], values["foundry.request"]
    if not getattr(request, "request_id", None):
        # Audit events of this call carry the request's id (foundry/asgi.py binds it), else
        # `mcp-…`, which tells them from the API's and console's.
        request.request_id = current_request_id() or f"mcp-{uuid.uuid4().hex}"

    def call():
        close_old_connections()
        connection.set_tenant(tenant)
        try:
            _check(principal, request, target, permission, scope)
            # Model history names the caller and carries the call's request id, as for the API
            # (HistoryMiddleware; no Django middleware runs for /mcp).
            with (
                request_id_bound(request.request_id),
                history_actor(principal, remote_addr=request.META.get("REMOTE_ADDR") or None),
            ):
                return fn(principal, request, *args)
        except (ServiceError, CodedError, FilterError) as exc:
            raise Refusal(exc.code, exc.message, getattr(exc, "position", None)) from None
        except ValidationError as exc:
            raise Refusal(getattr(exc, "code", None) or "invalid", " ".join(exc.messages)) from None
        except Http404 as exc:
            raise Refusal("not_found", str(exc) or "Not found.") from None
        except PermissionDenied as exc:  # a service's own rule refused the principal: audited as the matrix's
            _denied(principal, request, target, {"reason": str(exc)[:200]})
            raise Refusal("forbidden", str(exc) or "Not allowed.") from None
        finally:
            connection.set_schema_to_public()

    return await sync_to_async(call, thread_sensitive=False)()


async def run_tool(ctx: Context, tool: str, permission: Permission, scope: str, fn: Callable[..., Any], *args):
    """Run `fn(principal, request, *args)` in the caller's workspace once the matrix allows it.

    Service refusals become tool errors with their stable code; anything unexpected propagates
    (the SDK answers a generic error and logs it). Each call holds a worker thread and a
    database connection only while `fn` runs."""
    try:
        return await _run(_values(ctx.request_context), ("mcp_tool", tool), permission, scope, fn, args)
    except Refusal as refused:
        raise refusal(refused.code, refused.message) from None


async def caller_recheck(ctx: Context) -> None:
    """A tool error if the call's workspace or credential no longer admits it (suspended, token
    revoked or expired): a tool that waits looks again before each poll, as at a new request. The
    caller as resolved now is who the call goes on as: a member whose role changed meanwhile is
    checked with the new role from the next look on."""
    from foundry.mcp.gateway import Refused, caller_resolve

    values = _values(ctx.request_context)
    request = values["foundry.request"]
    try:
        resolved = await sync_to_async(caller_resolve, thread_sensitive=False)(request.scope)
    except Refused as refused:
        raise refusal(refused.code, refused.message) from None
    # The call's own request stays (its id names every event of the call); who it is for is new.
    values["foundry.tenant"] = request.tenant = resolved["foundry.tenant"]
    values["foundry.principal"] = request.user = resolved["foundry.principal"]


async def run_resource(request_context, uri: str, permission: Permission, scope: str, fn: Callable[..., Any], *args):
    """`run_tool` for resources (reads and lists; `request_context` is the SDK's request context):
    a refusal is a JSON-RPC error whose `data` names the stable code."""
    try:
        return await _run(_values(request_context), ("mcp_resource", uri[:200]), permission, scope, fn, args)
    except Refusal as refused:
        code = RESOURCE_FORBIDDEN if refused.code in ("forbidden", "unauthenticated") else INVALID_PARAMS
        data = {"code": refused.code, "uri": uri[:200]}
        if refused.position is not None:
            data["position"] = refused.position
        raise MCPError(code=code, message=str(refused), data=data) from None
