"""The typed outputs of the MCP tools (their `outputSchema`). Field names follow the REST API's."""

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

# --- manifests --------------------------------------------------------------------------------


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


# --- agents -----------------------------------------------------------------------------------


class Pin(BaseModel):
    name: str
    version: int


class AgentSummary(BaseModel):
    name: str
    latest_version: int
    live_version: int | None = Field(description="The deployed version, if any.")
    domain: str | None = Field(description="`name@version` of the DIS the live version is pinned to.")
    created_at: datetime


class AgentPage(BaseModel):
    agents: list[AgentSummary]
    next_page_token: str | None = Field(description="Pass as page_token for the next page; empty on the last.")


class AgentVersionInfo(BaseModel):
    number: int
    digest: str
    message: str
    author_email: str
    created_at: datetime


class AgentDetail(AgentSummary):
    versions: list[AgentVersionInfo] = Field(description="Newest first, at most 20.")
    source: str = Field(description="The YAML of the latest version.")


class DeploymentInfo(BaseModel):
    id: int
    agent: str
    version: int = Field(description="The manifest version now live.")
    domain: Pin = Field(description="The DIS version it is pinned to.")
    domain_latest_version: int
    domain_outdated: bool = Field(description="A newer version of the pinned domain exists.")
    reason: str = Field(description="deploy or migrate.")
    deployed_by: str
    created_at: datetime
    created: bool = Field(description="False when that version was live already: nothing changed.")


# --- runs -------------------------------------------------------------------------------------


class RunSummary(BaseModel):
    id: uuid.UUID
    agent: str
    version: int = Field(description="The manifest version the run executes.")
    status: str = Field(
        description="queued, running, waiting_approval (decide with approve_run/reject_run), "
        "succeeded, failed or cancelled."
    )
    reason: str = Field(description="Why the run did not succeed: a stable code, or empty.")
    message: str
    created_by: str
    parent: uuid.UUID | None = Field(description="Sub-agent runs: the parent run.")
    domain: Pin = Field(description="The DIS version the run executes against.")
    project: str
    provider: str
    model: str
    step_count: int
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class RunPage(BaseModel):
    runs: list[RunSummary]
    next_page_token: str | None = Field(description="Pass as page_token for the next page; empty on the last.")


class StepInfo(BaseModel):
    index: int
    node: str = Field(description="model or tool.")
    tool: str
    arguments: Any = Field(description="Tool calls: the arguments the model gave.")
    status: str = Field(description="ok, error, denied (by a DIS rule) or rejected (by an approver).")
    error: str
    summary: str
    warnings: list[str]
    provider: str
    model: str
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    duration_ms: float
    created_at: datetime


class ApprovalInfo(BaseModel):
    step: int = Field(description="The step (tool call) the approval is about.")
    tool: str
    arguments: dict[str, Any]
    reasons: list[Any] = Field(description="Why the call needs an approver (manifest, DIS rules).")
    decision: str = Field(description="pending, approved, rejected or cancelled.")
    approver: str
    comment: str
    requested_at: datetime
    decided_at: datetime | None


class RunDetail(RunSummary):
    input: str
    output: str | None = Field(description="The agent's answer; null until it has one.")
    steps: list[StepInfo] = Field(description="In order; the first 200.")
    steps_truncated: bool = Field(description="The run has more steps than listed.")
    approvals: list[ApprovalInfo] = Field(description="Every approval the run asked for, in order.")
    pending_approval: ApprovalInfo | None = Field(
        description="The tool call the run waits for: approve_run or reject_run it, naming its `step`."
    )


# --- domains (DIS) ----------------------------------------------------------------------------


class FieldInfo(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str = Field(description="string, integer, decimal, boolean, date, datetime, enum, reference or list.")
    description: str | None = None
    required: bool = False
    values: list[str] | None = Field(default=None, description="enum: the allowed values.")
    entity: str | None = Field(default=None, description="reference: the entity referred to.")
    items: dict[str, Any] | None = Field(default=None, description="list: the type of the items.")


class Entity(BaseModel):
    name: str
    description: str | None
    key: str | None
    fields: dict[str, FieldInfo]


class Relationship(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    name: str
    description: str | None = None
    from_: str = Field(alias="from")
    to: str
    via: str | None = None
    cardinality: str


class Rule(BaseModel):
    name: str
    description: str | None = None
    entity: str
    when: str = Field(description="AIP-160 condition on the entity's fields.")
    then: str = Field(description="require_approval, deny or warn.")
    message: str | None = None


class DomainDetail(BaseModel):
    name: str
    version: int
    latest_version: int
    digest: str
    description: str | None
    published_at: datetime
    entities: list[Entity]
    relationships: list[Relationship]
    rules: list[Rule]
    glossary: dict[str, str]


# --- usage ------------------------------------------------------------------------------------


class UsageGroup(BaseModel):
    agent: str | None = Field(description="Null when not grouped by agent.")
    provider: str | None = Field(description="Null when not grouped by model.")
    model: str | None = Field(description="Null when not grouped by model.")
    calls: int = Field(description="Model calls.")
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    cache_write_tokens: int = Field(description="Of the input tokens, those written to the provider's prompt cache.")
    cost_usd: str = Field(
        description='USD, a decimal with 8 places ("0.00000010"), as the API\'s statement writes it; each call '
        "priced when it was made (prices in effect then)."
    )
    unpriced_calls: int = Field(description="Calls of a model that had no price then (not in cost_usd).")


class Usage(BaseModel):
    start: datetime
    end: datetime = Field(description="Exclusive.")
    calls: int
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    cache_write_tokens: int
    cost_usd: str = Field(description='USD, a decimal with 8 places ("0.00000010").')
    unpriced_calls: int
    groups: list[UsageGroup] = Field(description="Ordered by name; at most 500.")
    groups_truncated: bool
