"""Foundry over the Model Context Protocol: the tools and resources, on the official SDK.

Every tool has a typed input (its signature, with descriptions and bounds) and a typed output (a
Pydantic model, foundry/mcp/shapes.py); each declares the permission and token scope it needs —
the API's matrix — and calls the same services as the API (no business logic here). A refusal
is a tool error result `code: message` with the API's stable codes. docs/mcp.md is the reference.

Resources are the YAML of every agent and domain version; the list names the latest version
of each, in pages.
"""

import re
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Annotated, Any, Literal
from urllib.parse import quote

import anyio
from django.http import QueryDict
from django.utils import timezone
from mcp import MCPError
from mcp.server._otel import OpenTelemetryMiddleware as SdkSpans
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError, ToolError
from mcp_types import INVALID_PARAMS, ListResourcesResult, PaginatedRequestParams, ToolAnnotations
from mcp_types import Resource as MCPResource
from pydantic import BeforeValidator, Field, Strict, ValidationError
from rest_framework.exceptions import ParseError

from apps.accounts.permissions import Permission
from apps.billing.rls import current_tenant_id
from apps.billing.selectors import usage_summary
from apps.billing.statements import money_text
from apps.catalog.apis import DOCUMENTS, DeploymentOutput
from apps.catalog.models import Document, Kind
from apps.catalog.selectors import documents_listed, without_version_bodies
from apps.catalog.services import agent_deploy_made, document_validate, version_get
from apps.runs.apis import RUNS, ApprovalOutput, RunListOutput, RunOutput, StepOutput, runs_listed
from apps.runs.models import Approval, Run
from apps.runs.services import DECIDE_ACCESS, MAX_COMMENT_CHARS, MAX_INPUT_CHARS, run_decide, run_start
from apps.tokens.models import Scope
from foundry.api.parsers import json_check
from foundry.errors import ServiceError
from foundry.manifests.loader import MAX_BYTES
from foundry.mcp.context import caller_recheck, run_resource, run_tool
from foundry.mcp.shapes import (
    AgentDetail,
    AgentPage,
    DeploymentInfo,
    DomainDetail,
    RunDetail,
    RunPage,
    Usage,
    Validation,
)

MAX_WAIT_SECONDS = 60
MAX_STEPS_SHOWN = 200
MAX_USAGE_GROUPS = 500
RESOURCES_PER_PAGE = 100
YAML = "application/yaml"

Name = Annotated[str, Field(min_length=1, max_length=63, description="The agent's name (metadata.name).")]
# Hints for clients deciding what to confirm with their user (the server enforces the matrix).
READS = ToolAnnotations(read_only_hint=True, open_world_hint=False)
WRITES = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False)
DEPLOYS = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False)


def _integral(value):
    """A JSON number with a zero fraction (5.0) as the integer JSON Schema counts it; anything
    else as given, for Strict() to refuse (true, "1", 1.5)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


# The integers a tool takes: exactly what an input schema's "type": "integer" accepts. Placed after
# Field(ge=..., le=...) in an Annotated: before it, the schema carries pydantic's ge/le instead of
# JSON Schema's minimum/maximum.
Integral = BeforeValidator(_integral)

RunId = Annotated[uuid.UUID, Field(description="The run's id.")]
PageSize = Annotated[int, Strict(), Field(ge=1, le=1000, description="Items per page."), Integral]
PageToken = Annotated[str, Field(max_length=2000, description="next_page_token of the previous page.")]


# What each tool needs: the API's permission and token scope for the same operation. One table,
# so that tests/mcp/test_access_matrix.py holds every tool to the matrix for every role.
TOOL_ACCESS: dict[str, tuple[Permission, str]] = {
    "list_agents": (Permission.AGENTS_VIEW, Scope.READ),
    "get_agent": (Permission.AGENTS_VIEW, Scope.READ),
    "validate_manifest": (Permission.AGENTS_VIEW, Scope.READ),
    "deploy_agent": (Permission.AGENTS_DEPLOY, Scope.WRITE),
    "run_agent": (Permission.RUNS_START, Scope.RUN),
    "get_run": (Permission.RUNS_VIEW, Scope.READ),
    "list_runs": (Permission.RUNS_VIEW, Scope.READ),
    "query_dis": (Permission.DOMAINS_VIEW, Scope.READ),
    "get_usage": (Permission.USAGE_VIEW, Scope.READ),
    "approve_run": DECIDE_ACCESS,
    "reject_run": DECIDE_ACCESS,
}


class FoundryServer(MCPServer):
    """The SDK's server, with a resource list of the caller's workspace (the SDK lists only
    resources registered at start-up, the same for everyone)."""

    async def _handle_list_resources(self, ctx, params: PaginatedRequestParams | None) -> ListResourcesResult:
        return await resources_list(ctx, params.cursor if params else None)

    # Tools, prompts and resource templates are each one page, whose answer has no nextCursor: a
    # cursor is one this server never gave, -32602 as MCP's pagination asks (the SDK ignored it
    # and answered the first page, as if the client's place in some list were found).
    async def _handle_list_tools(self, ctx, params: PaginatedRequestParams | None):
        _cursor_refused(params)
        return await super()._handle_list_tools(ctx, params)

    async def _handle_list_prompts(self, ctx, params: PaginatedRequestParams | None):
        _cursor_refused(params)
        return await super()._handle_list_prompts(ctx, params)

    async def _handle_list_resource_templates(self, ctx, params: PaginatedRequestParams | None):
        _cursor_refused(params)
        return await super()._handle_list_resource_templates(ctx, params)

    async def call_tool(self, name: str, arguments: dict[str, Any], context=None):
        """Refuse text no column takes (NUL, lone surrogates) in any argument up front, with the
        API's code (`json_text_invalid`), before a tool looks a name up with it; and arguments
        the tool does not declare (`field_unknown`)."""
        tool = self._tool_manager.get_tool(name)
        if tool is None:  # a protocol error (MCP, Tools: Error Handling); the caller's text, echoed in part
            raise MCPError(
                code=INVALID_PARAMS, message=f"Unknown tool: {_shown(name)}", data={"code": "tool_not_found"}
            )
        try:
            json_check(arguments)
        except ParseError as exc:
            raise ToolError(f"Error executing tool {name}: {exc.get_codes()}: {exc.detail}") from None
        # A misspelt argument is refused, as the API refuses a misspelt field: validation would
        # drop it, and the tool would run as if it were left out.
        known = tool.parameters.get("properties", {})
        unknown = sorted(str(key)[:60] for key in arguments if key not in known)[:20]
        if unknown:
            message = f"Not arguments of {name}: {', '.join(unknown)}; its arguments are {', '.join(known)}."
            raise ToolError(f"Error executing tool {name}: field_unknown: {message}")
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            if not isinstance(exc.__cause__, ValidationError):
                raise
            # Arguments that miss the input schema: each named with what is wrong, not pydantic's
            # text (its models' names, the values given, a link to its documentation).
            raise ToolError(f"Error executing tool {name}: argument_invalid: {_mismatches(exc.__cause__)}") from None

    async def read_resource(self, uri, context=None):
        """A URI no resource or template matches is invalid params (-32602), naming the URI in
        part, as the workspace's own refusals do (the SDK's echoes it whole, twice, and logs it)."""
        try:
            return await super().read_resource(uri, context)
        except ResourceNotFoundError:
            shown = _shown(str(uri))
            raise MCPError(code=INVALID_PARAMS, message=f"Unknown resource: {shown}", data={"uri": shown}) from None

    async def get_prompt(self, name: str, arguments: dict[str, Any] | None = None, context=None):
        """An unknown prompt is invalid params (-32602), as an unknown resource is; the SDK's
        answer is a bare error of code 0, with a logged traceback."""
        if self._prompt_manager.get_prompt(name) is None:
            raise MCPError(code=INVALID_PARAMS, message=f"Unknown prompt: {name[:200]!r}.")
        return await super().get_prompt(name, arguments, context)


mcp = FoundryServer(
    name="foundry",
    title="Agent Foundry",
    instructions=(
        "Agent Foundry: build, version, deploy and run LLM agents of one workspace. "
        "Agents and domains (DIS) are versioned YAML manifests; validate before deploying. "
        "A run may stop at a tool call that needs a human approver: get_run shows it as "
        "pending_approval; approve_run or reject_run decide it."
    ),
    # No `subscriptions/listen` (2026-07-28): the server is stateless and publishes no change
    # events, so it claims no listChanged or subscribe capability and holds no stream open.
    subscriptions=False,
)
# The SDK opens a server span of its own per message, named after the tool or method the caller
# wrote (any text: a span name, and a span-metrics series, per made-up tool) and parented on the
# message's `_meta.traceparent`. A /mcp request has its one server span from the ASGI
# instrumentation, as every request has (docs/observability.md): the SDK's is left out.
mcp._lowlevel_server.middleware = [
    layer for layer in mcp._lowlevel_server.middleware if not isinstance(layer, SdkSpans)
]


# --- helpers ----------------------------------------------------------------------------------


def _cursor_refused(params: PaginatedRequestParams | None) -> None:
    if params is not None and params.cursor:
        raise MCPError(
            code=INVALID_PARAMS,
            message="Invalid cursor: this list is a single page, and no cursor was given for it.",
            data={"code": "invalid_page_token"},
        )


def _shown(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else f"{text[:limit]}…"


def _mismatches(error: ValidationError) -> str:
    """`argument: what is wrong` for each argument that misses the input schema (the first 10)."""
    problems = [
        f"{'.'.join(str(part) for part in problem['loc']) or 'arguments'}: {_shown(problem['msg'])}"
        for problem in error.errors(include_url=False, include_input=False)[:10]
    ]
    return "; ".join(problems) + "."


def _summary(document: Document) -> dict:
    live = document.live
    return {
        "name": document.name,
        "latest_version": document.latest_number,
        "live_version": live.version.number if live else None,
        "domain": f"{live.domain_version.document.name}@{live.domain_version.number}" if live else None,
        "created_at": document.created_at,
    }


def _agents():
    return documents_listed(Kind.AGENT, deployment_agent=False)


def _agent(name: str) -> Document:
    document = _agents().filter(name=name).first()
    if document is None:
        raise ServiceError("agent_not_found", f"There is no agent {name!r}.", status=404)
    return document


def _runs():
    runs = Run.objects.select_related("agent", "version", "domain_version__document")
    return without_version_bodies(runs, "version", "domain_version")


def _run(run_id: uuid.UUID) -> Run:
    run = _runs().filter(pk=run_id).first()
    if run is None:
        raise ServiceError("run_not_found", f"There is no run {run_id} in this workspace.", status=404)
    return run


def _run_detail(run: Run) -> RunDetail:
    steps = list(run.steps.defer("replay").order_by("index")[: MAX_STEPS_SHOWN + 1])
    approvals = ApprovalOutput(run.approvals.order_by("step")[:MAX_STEPS_SHOWN], many=True).data
    # The call the run waits for, wherever it is: the list above is capped, this one is not.
    # The one run_decide decides: the first pending (a run waits at one step at a time).
    pending = run.approvals.filter(decision=Approval.Decision.PENDING).order_by("step").first()
    return RunDetail(
        **RunOutput(run).data,
        steps=StepOutput(steps[:MAX_STEPS_SHOWN], many=True).data,
        steps_truncated=len(steps) > MAX_STEPS_SHOWN,
        approvals=approvals,
        pending_approval=ApprovalOutput(pending).data if pending is not None else None,
    )


def _list_params(path: str, **values) -> SimpleNamespace:
    """What ListSpec.page reads of a request: its query parameters, as text, and a path of its own
    (a page token is bound to it: one list's token is no token of another's)."""
    query = QueryDict(mutable=True)
    query.update({k: str(v) for k, v in values.items() if v not in (None, "")})
    return SimpleNamespace(path=path, query_params=query)


# --- agents -----------------------------------------------------------------------------------


@mcp.tool(
    annotations=READS,
    description="List this workspace's agents. `filter` is AIP-160 over name, created_at, latest_number.",
)
async def list_agents(
    ctx: Context,
    filter: Annotated[str, Field(description='AIP-160, e.g. name = "invoice-*"', max_length=2000)] = "",
    page_size: PageSize = 50,
    page_token: PageToken = "",
) -> AgentPage:
    def work(principal, request):
        page = DOCUMENTS.page(
            _list_params("mcp:list_agents", filter=filter, page_size=page_size, page_token=page_token), _agents()
        )
        return AgentPage(agents=[_summary(d) for d in page.items], next_page_token=page.next_page_token)

    return await run_tool(ctx, "list_agents", *TOOL_ACCESS["list_agents"], work)


@mcp.tool(annotations=READS, description="One agent: its live deployment, recent versions and the latest YAML.")
async def get_agent(ctx: Context, name: Name) -> AgentDetail:
    def work(principal, request):
        document = _agent(name)
        # The newest 20 versions' facts; the source of the latest only (a version may be ~1 MiB).
        versions = list(document.versions.order_by("-number").defer("source", "content")[:20])
        latest = versions[0] if versions else None
        return AgentDetail(
            **_summary(document),
            versions=[
                {
                    "number": v.number,
                    "digest": v.digest,
                    "message": v.message,
                    "author_email": v.author_email,
                    "created_at": v.created_at,
                }
                for v in versions
            ],
            source=document.versions.values_list("source", flat=True).get(pk=latest.pk) if latest else "",
        )

    return await run_tool(ctx, "get_agent", *TOOL_ACCESS["get_agent"], work)


@mcp.tool(
    annotations=READS,
    description="Validate a Domain or Agent manifest (YAML) against this workspace's published domains. "
    "Changes nothing; every problem has a code, a line and a column.",
)
async def validate_manifest(
    ctx: Context,
    content: Annotated[str, Field(description="The YAML document.", max_length=MAX_BYTES)],
    filename: Annotated[str, Field(max_length=200)] = "manifest.yaml",
) -> Validation:
    def work(principal, request):
        result = document_validate(content, filename)
        return Validation(
            valid=result.ok,
            kind=result.kind,
            name=result.name,
            problems=[
                {"code": p.code, "message": p.message, "line": p.line, "column": p.column, "path": p.path}
                for p in result.problems
            ],
        )

    return await run_tool(ctx, "validate_manifest", *TOOL_ACCESS["validate_manifest"], work)


@mcp.tool(
    annotations=DEPLOYS,
    description="Make a published version of an agent live. Runs already started keep the versions they "
    "started with; deploying the live version again changes nothing (created: false).",
)
async def deploy_agent(
    ctx: Context,
    name: Name,
    version: Annotated[
        int, Strict(), Field(ge=1, le=2**31 - 1, description="The version number to make live."), Integral
    ],
) -> DeploymentInfo:
    def work(principal, request):
        document = _agent(name)
        deployment, made = agent_deploy_made(actor=principal, document=document, number=version, request=request)
        return DeploymentInfo(**DeploymentOutput(deployment).data, created=made)

    return await run_tool(ctx, "deploy_agent", *TOOL_ACCESS["deploy_agent"], work)


# --- runs -------------------------------------------------------------------------------------


_SETTLED = frozenset({*Run.FINISHED, Run.Status.WAITING_APPROVAL})


@mcp.tool(
    annotations=WRITES,
    description="Start a run of a deployed agent with a text input. It is queued for a worker; with "
    "wait_seconds, the call waits (reporting progress) until the run finishes or waits for an "
    "approval, or the time is up, and returns the run as it then is.",
)
async def run_agent(
    ctx: Context,
    agent: Name,
    input: Annotated[str, Field(min_length=1, max_length=MAX_INPUT_CHARS, description="The request, as text.")],
    wait_seconds: Annotated[
        float,
        Strict(),
        Field(ge=0, le=MAX_WAIT_SECONDS, description="How long to wait for the run to settle (0: not)."),
    ] = 0,
) -> RunDetail:
    def start(principal, request):
        return run_start(actor=principal, agent=_agent(agent), input=input, request=request).pk

    run_id = await run_tool(ctx, "run_agent", *TOOL_ACCESS["run_agent"], start)
    if wait_seconds:
        await ctx.report_progress(0, wait_seconds, "queued")
    # Between looks the call holds no thread and no connection: only this coroutine sleeps.
    deadline = anyio.current_time() + wait_seconds
    pause, reported = 0.2, 0.0
    while deadline - anyio.current_time() > 0:
        await caller_recheck(ctx)  # the workspace suspended or the token revoked meanwhile: stop
        status, steps = await run_tool(ctx, "run_agent", *TOOL_ACCESS["run_agent"], _run_progress, run_id)
        if status in _SETTLED:
            break
        left = deadline - anyio.current_time()
        if wait_seconds - left > reported:  # progress only ever increases (MCP): the time waited so far
            reported = min(wait_seconds - left, wait_seconds)
            await ctx.report_progress(reported, wait_seconds, f"{status}; {steps} steps so far")
        await anyio.sleep(max(0.0, min(pause, left)))
        pause = min(pause * 1.5, 1.0)

    def detail(principal, request):
        return _run_detail(_run(run_id))

    if wait_seconds:
        await caller_recheck(ctx)
    return await run_tool(ctx, "run_agent", *TOOL_ACCESS["run_agent"], detail)


def _run_progress(principal, request, run_id: uuid.UUID) -> tuple[str, int]:
    progress = Run.objects.filter(pk=run_id).values_list("status", "step_count").first()
    if progress is None:  # gone while waited for (the workspace's retention, an erasure)
        raise ServiceError("run_not_found", f"There is no run {run_id} in this workspace.", status=404)
    return progress


@mcp.tool(
    annotations=READS, description="One run: status, result, steps, approvals and the tool call it waits for, if any."
)
async def get_run(ctx: Context, run_id: RunId) -> RunDetail:
    def work(principal, request):
        return _run_detail(_run(run_id))

    return await run_tool(ctx, "get_run", *TOOL_ACCESS["get_run"], work)


@mcp.tool(
    annotations=READS,
    description="List runs, newest first. `filter` is AIP-160 over id, status, agent, version, project, "
    "provider, model, reason, created_by, parent, step_count, input_tokens, output_tokens, created_at, "
    'started_at, finished_at, updated_at; e.g. status = "waiting_approval" AND agent = "invoice-triage".',
)
async def list_runs(
    ctx: Context,
    filter: Annotated[str, Field(description="AIP-160 filter.", max_length=2000)] = "",
    order_by: Annotated[str, Field(description='AIP-132, e.g. "finished_at desc".', max_length=200)] = "",
    page_size: PageSize = 50,
    page_token: PageToken = "",
) -> RunPage:
    def work(principal, request):
        params = _list_params(
            "mcp:list_runs", filter=filter, order_by=order_by, page_size=page_size, page_token=page_token
        )
        page = RUNS.page(params, runs_listed())
        return RunPage(runs=RunListOutput(page.items, many=True).data, next_page_token=page.next_page_token)

    return await run_tool(ctx, "list_runs", *TOOL_ACCESS["list_runs"], work)


# Its length is checked by run_decide, as for the API and the console: once surrounding spaces are removed.
Comment = Annotated[
    str,
    Field(
        description=f"Why; kept with the decision. At most {MAX_COMMENT_CHARS} characters once surrounding "
        "spaces are removed."
    ),
]
Step = Annotated[
    int | None,
    Strict(),
    Field(
        ge=1,
        le=2**31 - 1,
        description="The step (tool call) you reviewed: pending_approval.step. If the run now waits at "
        "another step, the decision is refused (approval_stale).",
    ),
    Integral,  # after Field: its bounds are then published as minimum/maximum, not pydantic's ge/le
]


# What the input schema's `date-time` (RFC 3339) allows, `t` and `z` in either case and a fraction
# of any length (read to the microsecond), and ISO 8601's other spellings (a space, a comma, a
# zone without its colon or of hours alone, a date alone). A zone follows a time, never a date.
_ISO_8601 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}"  # the date, then maybe the time and its zone
    r"(?:[Tt ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:[.,][0-9]{1,64})?)?(?P<zone>Z|z|[+-][0-9]{2}(?::?[0-9]{2})?)?)?"
)


def _iso_8601(value: object) -> object:
    """A time argument is ISO 8601 text: pydantic alone also reads a number, or a string of
    digits, as a Unix timestamp (seconds or milliseconds, by its size). A zone of hours alone
    (`+05`), which pydantic does not read, is given its minutes."""
    if value is None:
        return value
    if isinstance(value, str) and (spelt := _ISO_8601.fullmatch(value)):
        return value + ":00" if spelt["zone"] and len(spelt["zone"]) == 3 else value
    raise ValueError(
        "expected an ISO 8601 date or datetime as text, its zone (if any) after the time: Z, +hh or +hh:mm;"
        " such as 2026-01-31T00:00:00Z"
    )


RequestedAt = Annotated[
    datetime | None,
    BeforeValidator(_iso_8601),  # a number is no time (docs/mcp.md), as for get_usage
    Field(
        description="When the question you reviewed was asked: pending_approval.requested_at. If the run "
        "asked again at that step since (an overage whose budgets changed), the decision is refused "
        "(approval_stale).",
    ),
]


async def _decide(
    ctx: Context, tool: str, run_id: uuid.UUID, approved: bool, comment: str, step, requested_at
) -> RunDetail:
    def work(principal, request):
        run = run_decide(
            actor=principal,
            run=_run(run_id),
            approved=approved,
            comment=comment,
            step=step,
            requested_at=requested_at,
            request=request,
        )
        return _run_detail(_run(run.pk))

    return await run_tool(ctx, tool, *TOOL_ACCESS[tool], work)


@mcp.tool(
    annotations=WRITES,
    description="Approve the tool call a run waits for; the run is queued again and the call is made.",
)
async def approve_run(
    ctx: Context, run_id: RunId, comment: Comment = "", step: Step = None, requested_at: RequestedAt = None
) -> RunDetail:
    return await _decide(ctx, "approve_run", run_id, True, comment, step, requested_at)


@mcp.tool(
    annotations=WRITES,
    description="Reject the tool call a run waits for; the run is queued again and the model is told the "
    "call was rejected.",
)
async def reject_run(
    ctx: Context, run_id: RunId, comment: Comment = "", step: Step = None, requested_at: RequestedAt = None
) -> RunDetail:
    return await _decide(ctx, "reject_run", run_id, False, comment, step, requested_at)


# --- domains (DIS) and usage ------------------------------------------------------------------


def _domain_detail(version, entity: str | None) -> DomainDetail:
    content = version.content
    spec = content.get("spec") or {}
    entities = spec.get("entities") or {}
    relationships, rules = spec.get("relationships") or [], spec.get("rules") or []
    if entity is not None:
        if entity not in entities:
            known = ", ".join(sorted(entities))
            raise ServiceError(
                "entity_not_found", f"{version.document.name} v{version.number} has no entity {entity!r}: {known}."
            )
        entities = {entity: entities[entity]}
        relationships = [r for r in relationships if entity in (r.get("from"), r.get("to"))]
        rules = [r for r in rules if r.get("entity") == entity]
    return DomainDetail(
        name=version.document.name,
        version=version.number,
        latest_version=version.document.latest_number,
        digest=version.digest,
        description=(content.get("metadata") or {}).get("description"),
        published_at=version.created_at,
        entities=[
            {"name": name, "description": e.get("description"), "key": e.get("key"), "fields": e.get("fields") or {}}
            for name, e in entities.items()
        ],
        relationships=relationships,
        rules=rules,
        glossary=spec.get("glossary") or {},
    )


@mcp.tool(
    annotations=READS,
    description="Read a domain (DIS): its entities with typed fields, relationships, business rules and "
    "glossary — of the latest version, or of `version`; only one entity's part with `entity`.",
)
async def query_dis(
    ctx: Context,
    domain: Annotated[str, Field(min_length=1, max_length=63, description="The domain's name.")],
    version: Annotated[
        int | None, Strict(), Field(ge=1, le=2**31 - 1, description="Default: the latest."), Integral
    ] = None,
    entity: Annotated[str | None, Field(min_length=1, max_length=63, description="Only this entity.")] = None,
) -> DomainDetail:
    def work(principal, request):
        document = Document.objects.filter(kind=Kind.DOMAIN, name=domain).first()
        if document is None:
            raise ServiceError("domain_not_found", f"There is no domain {domain!r}.", status=404)
        return _domain_detail(version_get(document, version or document.latest_number), entity)

    return await run_tool(ctx, "query_dis", *TOOL_ACCESS["query_dis"], work)


_GROUPINGS = {"agent": ("agent",), "model": ("model",), "agent_and_model": ("agent", "model")}


def _aware(value: datetime | None) -> datetime | None:
    """In UTC (no zone: UTC). PostgreSQL stores offsets up to ±15:59 only; Python reads ±23:59."""
    if value is None:
        return None
    try:
        return value.replace(tzinfo=UTC) if timezone.is_naive(value) else value.astimezone(UTC)
    except OverflowError:  # before year 1 or after 9999 once in UTC
        raise ServiceError("period_invalid", f"{value.isoformat()} is out of range once in UTC.") from None


@mcp.tool(
    annotations=READS,
    description="Model calls, tokens (input, output, cached, cache writes) and their cost in USD that the "
    "workspace's runs used in a period, grouped by agent, model, or both. Default period: this calendar month "
    "(UTC) until now.",
)
async def get_usage(
    ctx: Context,
    start: Annotated[
        datetime | None, BeforeValidator(_iso_8601), Field(description="ISO 8601; without a zone, UTC.")
    ] = None,
    end: Annotated[datetime | None, BeforeValidator(_iso_8601), Field(description="Exclusive; default now.")] = None,
    group_by: Literal["agent", "model", "agent_and_model"] = "agent_and_model",
) -> Usage:
    def work(principal, request):
        now = timezone.now()
        since = _aware(start) or now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        until = _aware(end) or now
        if until <= since:
            raise ServiceError("period_invalid", "The period's end must come after its start.")
        kinds = ("calls", "input_tokens", "output_tokens", "cached_tokens", "cache_write_tokens", "unpriced_calls")
        totals = dict.fromkeys(kinds, 0)
        totals["cost_usd"] = Decimal(0)
        groups = []
        for row in usage_summary(tenant_id=current_tenant_id(), start=since, end=until, by=_GROUPINGS[group_by]):
            group = {
                "agent": row.get("agent"),
                "provider": row.get("provider"),
                "model": row.get("model"),
                "calls": row["calls"],
                "input_tokens": row["input_total"],
                "output_tokens": row["output_total"],
                "cached_tokens": row["cached_total"],
                "cache_write_tokens": row["cache_write_total"],
                "cost_usd": row["cost_total"] or Decimal(0),
                "unpriced_calls": row["unpriced"],
            }
            for key in totals:
                totals[key] += group[key]
            groups.append(group)
        shown = [{**group, "cost_usd": money_text(group["cost_usd"])} for group in groups[:MAX_USAGE_GROUPS]]
        totals["cost_usd"] = money_text(totals["cost_usd"])
        return Usage(start=since, end=until, **totals, groups=shown, groups_truncated=len(groups) > len(shown))

    return await run_tool(ctx, "get_usage", *TOOL_ACCESS["get_usage"], work)


# --- resources --------------------------------------------------------------------------------

_PATH = {Kind.AGENT: "agents", Kind.DOMAIN: "dis"}
_VIEW = {Kind.AGENT: Permission.AGENTS_VIEW, Kind.DOMAIN: Permission.DOMAINS_VIEW}


def _uri(kind: str, name: str, number) -> str:
    """The resource's URI, its values percent-encoded again (the SDK hands them decoded): what a
    refusal names is the URI asked for (`%2F` stays one segment, `%25` no bare `%`)."""
    return f"foundry://{_PATH[kind]}/{quote(name, safe='')}/versions/{quote(str(number), safe='')}"


async def _version_source(ctx: Context, kind: str, name: str, number: str) -> str:
    def work(principal, request):
        document = Document.objects.filter(kind=kind, name=name).first()
        if document is None:
            raise ServiceError(f"{kind}_not_found", f"There is no {kind} {_shown(name)!r}.", status=404)
        return version_get(document, number).source

    return await run_resource(ctx.request_context, _uri(kind, name, number), _VIEW[kind], Scope.READ, work)


@mcp.resource(
    "foundry://agents/{name}/versions/{n}",
    name="agent_version",
    title="Agent manifest version",
    description="The YAML of version n of an agent, as published.",
    mime_type=YAML,
)
async def agent_version(name: str, n: str, ctx: Context) -> str:
    return await _version_source(ctx, Kind.AGENT, name, n)


@mcp.resource(
    "foundry://dis/{domain}/versions/{n}",
    name="dis_version",
    title="Domain (DIS) version",
    description="The YAML of version n of a domain, as published.",
    mime_type=YAML,
)
async def dis_version(domain: str, n: str, ctx: Context) -> str:
    return await _version_source(ctx, Kind.DOMAIN, domain, n)


async def resources_list(request_context, cursor: str | None) -> ListResourcesResult:
    """The latest version of every agent and domain the caller may read, by name, in pages."""

    def work(principal, request):
        kinds = [kind for kind, permission in _VIEW.items() if principal.has_permission(permission)]
        documents = Document.objects.filter(kind__in=kinds, latest_number__gt=0)
        page = DOCUMENTS.page(
            _list_params("mcp:resources/list", page_size=RESOURCES_PER_PAGE, page_token=cursor), documents
        )
        resources = [
            MCPResource(
                uri=_uri(d.kind, d.name, d.latest_number),
                name=f"{_PATH[d.kind]}/{d.name}@{d.latest_number}",
                title=f"{d.get_kind_display()} {d.name}, version {d.latest_number} (latest)",
                mime_type=YAML,
            )
            for d in page.items
        ]
        return ListResourcesResult(resources=resources, next_cursor=page.next_page_token or None)

    return await run_resource(request_context, "foundry://", Permission.AGENTS_VIEW, Scope.READ, work)


# Every tool's input schema says what call_tool enforces: no arguments but its own.
for _tool in mcp._tool_manager.list_tools():
    _tool.parameters["additionalProperties"] = False
