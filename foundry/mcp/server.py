"""Foundry over the Model Context Protocol: the tools and resources, on the official SDK.

Every tool has a typed input (its signature, with descriptions) and a typed output (a Pydantic
model); each declares the permission and token scope it needs — the API's matrix — and calls
the same services as the API (no business logic here). A refusal is a tool error result
`code: message` with the API's stable codes.
"""

from datetime import datetime
from types import SimpleNamespace
from typing import Annotated

from django.shortcuts import get_object_or_404
from mcp.server.mcpserver import Context, MCPServer
from pydantic import BaseModel, Field

from apps.accounts.permissions import Permission
from apps.catalog.models import Document, Kind
from apps.catalog.services import document_validate
from apps.tokens.models import Scope
from foundry.mcp.context import run_tool

MAX_MANIFEST_CHARS = 512 * 1024

mcp = MCPServer(
    name="foundry",
    title="Agent Foundry",
    instructions=(
        "Agent Foundry: build, version, deploy and run LLM agents of one workspace. "
        "Agents and domains (DIS) are versioned YAML manifests; validate before deploying."
    ),
)


# --- shapes -----------------------------------------------------------------------------------


class Problem(BaseModel):
    code: str = Field(description="Stable problem code, e.g. schema_required.")
    message: str
    line: int = Field(description="1-based line in the YAML.")
    column: int
    path: str = Field(description="JSON pointer of the value at fault.")


class Validation(BaseModel):
    valid: bool
    kind: str | None = Field(description="Domain or Agent, when it could be read.")
    name: str | None
    problems: list[Problem]


class AgentSummary(BaseModel):
    name: str
    latest_version: int
    live_version: int | None = Field(description="The deployed version, if any.")
    domain: str | None = Field(description="`name@version` of the DIS the live version is pinned to.")
    created_at: datetime


class AgentPage(BaseModel):
    agents: list[AgentSummary]
    next_page_token: str | None = Field(description="Pass as page_token for the next page; null on the last.")


class AgentVersionInfo(BaseModel):
    number: int
    digest: str
    message: str
    author_email: str
    created_at: datetime


class AgentDetail(AgentSummary):
    versions: list[AgentVersionInfo] = Field(description="Newest first, at most 20.")
    source: str = Field(description="The YAML of the latest version.")


# --- helpers ----------------------------------------------------------------------------------


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
    return Document.objects.filter(kind=Kind.AGENT).select_related("live__version", "live__domain_version__document")


# --- tools ------------------------------------------------------------------------------------


@mcp.tool(description="List this workspace's agents. `filter` is AIP-160 over name, created_at, latest_number.")
async def list_agents(
    ctx: Context,
    filter: Annotated[str, Field(description='AIP-160, e.g. name = "invoice-*"', max_length=2000)] = "",
    page_size: Annotated[int, Field(ge=1, le=1000)] = 50,
    page_token: Annotated[str, Field(max_length=2000)] = "",
) -> AgentPage:
    from apps.catalog.apis import DOCUMENTS

    def work(principal, request):
        params = {"filter": filter, "page_size": str(page_size), "page_token": page_token}
        page = DOCUMENTS.page(SimpleNamespace(query_params=params), _agents())
        return AgentPage(agents=[_summary(d) for d in page.items], next_page_token=page.next_page_token)

    return await run_tool(ctx, "list_agents", Permission.AGENTS_VIEW, Scope.READ, work)


@mcp.tool(description="One agent: its live deployment, recent versions and the latest YAML.")
async def get_agent(ctx: Context, name: Annotated[str, Field(min_length=1, max_length=63)]) -> AgentDetail:
    def work(principal, request):
        document = get_object_or_404(_agents(), name=name)
        versions = document.versions.order_by("-number")[:20]
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
            source=latest.source if latest else "",
        )

    return await run_tool(ctx, "get_agent", Permission.AGENTS_VIEW, Scope.READ, work)


@mcp.tool(
    description="Validate a Domain or Agent manifest (YAML) against this workspace's published domains. "
    "Changes nothing; every problem has a code, a line and a column."
)
async def validate_manifest(
    ctx: Context,
    content: Annotated[str, Field(description="The YAML document.", max_length=MAX_MANIFEST_CHARS)],
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

    return await run_tool(ctx, "validate_manifest", Permission.AGENTS_VIEW, Scope.READ, work)
