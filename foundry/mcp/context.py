"""What a tool runs with: the workspace and principal the gateway resolved, the permission
matrix, and the tenant's schema on a database connection of a worker thread."""

from collections.abc import Callable
from typing import Any

from asgiref.sync import sync_to_async
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import close_old_connections, connection
from django.http import Http404
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError

from apps.accounts.permissions import Permission
from apps.audit.models import Outcome
from apps.audit.services import audit_record
from foundry.errors import CodedError, ServiceError
from foundry.filtering import FilterError


def _scope(ctx: Context) -> dict:
    request = ctx.request_context.request
    scope = getattr(request, "scope", None)
    if not scope or "foundry.principal" not in scope:
        raise ToolError("unauthenticated: this tool is served over the authenticated /mcp endpoint only.")
    return scope


def refusal(code: str, message: str) -> ToolError:
    """A tool error result the model can read: `code: message` (codes as on the API)."""
    return ToolError(f"{code}: {message}")


def _check(principal, request, tool: str, permission: Permission, scope: str) -> None:
    denied = None
    if not principal.has_permission(permission):
        denied = {"permission": str(permission)}
    elif hasattr(principal, "has_scope") and not principal.has_scope(scope):
        denied = {"scope": str(scope)}
    if denied:
        audit_record(
            action="access.denied",
            actor=principal,
            target=("mcp_tool", tool),
            data={"via": "mcp", **denied},
            outcome=Outcome.DENIED,
            request=request,
        )
        needed = f"the '{scope}' scope" if "scope" in denied else str(permission)
        raise refusal("forbidden", f"{tool} needs {needed}.")


async def run_tool(ctx: Context, tool: str, permission: Permission, scope: str, fn: Callable[..., Any], *args):
    """Run `fn(principal, request, *args)` in the caller's workspace once the matrix allows it.

    Service refusals become tool errors with their stable code; anything unexpected propagates
    (the SDK answers a generic error and logs it)."""
    values = _scope(ctx)
    tenant, principal, request = values["foundry.tenant"], values["foundry.principal"], values["foundry.request"]

    def call():
        close_old_connections()
        connection.set_tenant(tenant)
        try:
            _check(principal, request, tool, permission, scope)
            return fn(principal, request, *args)
        except (ServiceError, CodedError, FilterError) as exc:
            raise refusal(exc.code, exc.message) from None
        except ValidationError as exc:
            raise refusal(getattr(exc, "code", None) or "invalid", " ".join(exc.messages)) from None
        except Http404 as exc:
            raise refusal("not_found", str(exc) or "Not found.") from None
        except PermissionDenied as exc:
            raise refusal("forbidden", str(exc) or "Not allowed.") from None
        finally:
            connection.set_schema_to_public()

    return await sync_to_async(call, thread_sensitive=False)()
