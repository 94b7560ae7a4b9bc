"""/api/v1/runs: start, list, inspect, cancel, approve and reject runs; their steps and approvals.

Every write goes through apps.runs.services. A step's `replay` (what re-creates it without doing
it again) is the worker's business and never leaves the server.
"""

import uuid
from dataclasses import dataclass

from django.db.models.functions import Left, Length
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts.permissions import Permission
from apps.catalog.apis import PinOutput
from apps.catalog.models import Document, Kind
from apps.catalog.selectors import without_version_bodies
from apps.runs.models import Approval, Run, Step
from apps.runs.services import (
    DECIDE_ACCESS,
    MAX_COMMENT_CHARS,
    MAX_INPUT_CHARS,
    MAX_SCRIPT_STEPS,
    run_cancel,
    run_decide,
    run_start,
)
from apps.tokens.models import Scope
from foundry.api.access import TenantAPIView
from foundry.api.created import LOCATION, created
from foundry.api.fields import StrictCharField, StrictInput, StrictIntegerField, no_body
from foundry.api.lists import ListSpec
from foundry.errors import ServiceError
from foundry.filtering import (
    DecimalField,
    EnumField,
    Field,
    FilterError,
    FilterSpec,
    IntegerField,
    StringField,
    TimestampField,
)
from foundry.filtering.fields import EQUALITY
from foundry.filtering.ordering import OrderSpec
from foundry.filtering.parser import Literal

STEP_STATUSES = ("ok", "error", "denied", "rejected")


@dataclass(frozen=True)
class UuidField(Field):
    """A UUID column: equality only, and a value that is not a UUID is refused where it stands."""

    operators: frozenset[str] = EQUALITY
    type_name: str = "uuid"

    def coerce(self, literal: Literal) -> uuid.UUID:
        try:
            if len(literal.text) <= 45:
                return uuid.UUID(literal.text)
        except ValueError:
            pass
        raise FilterError("invalid_value", f"{literal.text!r} is not a run id (a UUID).", literal.pos)


# --- serializers ------------------------------------------------------------------------------

PREVIEW_CHARS = 1000  # of a run's input and output, in lists


class RunOutput(serializers.ModelSerializer):
    agent = serializers.CharField(source="agent.name")
    version = serializers.IntegerField(source="version.number", help_text="The manifest version the run executes.")
    domain = PinOutput(source="domain_version", help_text="The DIS version the run executes against.")
    deployment = serializers.IntegerField(source="deployment_id")
    parent = serializers.UUIDField(source="parent_id", allow_null=True, help_text="Sub-agent runs: the parent run.")
    reason = serializers.CharField(help_text="Why the run did not succeed: a stable code, or empty.")
    trace_id = serializers.CharField(
        help_text="The OpenTelemetry trace of the request that started the run (32 hex digits), or empty."
    )

    class Meta:
        model = Run
        fields = [
            "id",
            "agent",
            "version",
            "domain",
            "deployment",
            "project",
            "provider",
            "model",
            "status",
            "reason",
            "message",
            "input",
            "output",
            "created_by",
            "parent",
            "parent_step",
            "step_count",
            "input_tokens",
            "output_tokens",
            "cached_tokens",
            "recoveries",
            "trace_id",
            "created_at",
            "started_at",
            "finished_at",
            "updated_at",
            "cancel_requested_at",
        ]


class RunListOutput(RunOutput):
    """A run as lists show it (`runs_listed`): its input and output cut to their first
    PREVIEW_CHARS characters, for a page of a thousand runs holding megabytes each would hold
    gigabytes; the run's own GET has them whole."""

    input = serializers.CharField(
        source="input_head", help_text=f"The input's first {PREVIEW_CHARS:,} characters (`input_truncated`)."
    )
    output = serializers.CharField(
        source="output_head",
        allow_null=True,
        help_text=f"The output's first {PREVIEW_CHARS:,} characters (`output_truncated`); null until it ends.",
    )
    input_truncated = serializers.SerializerMethodField(help_text="The input is longer: GET the run for all of it.")
    output_truncated = serializers.SerializerMethodField(help_text="The output is longer: GET the run for all of it.")

    class Meta(RunOutput.Meta):
        fields = [*RunOutput.Meta.fields, "input_truncated", "output_truncated"]

    def get_input_truncated(self, run: Run) -> bool:
        return run.input_length > PREVIEW_CHARS

    def get_output_truncated(self, run: Run) -> bool:
        return (run.output_length or 0) > PREVIEW_CHARS


class StepOutput(serializers.ModelSerializer):
    warnings = serializers.SerializerMethodField(help_text="What the runtime noted about the step (e.g. DIS rules).")

    class Meta:
        model = Step
        fields = [
            "index",
            "node",
            "tool",
            "arguments",
            "status",
            "error",
            "summary",
            "warnings",
            "provider",
            "model",
            "input_tokens",
            "output_tokens",
            "cached_tokens",
            "duration_ms",
            "created_at",
        ]

    def get_warnings(self, step: Step) -> list[str]:
        warnings = (step.record or {}).get("warnings") if isinstance(step.record, dict) else None
        return [str(w) for w in warnings] if isinstance(warnings, list) else []


class ApprovalOutput(serializers.ModelSerializer):
    class Meta:
        model = Approval
        fields = [
            "step",
            "tool",
            "tool_call_id",
            "arguments",
            "reasons",
            "decision",
            "approver",
            "comment",
            "requested_at",
            "decided_at",
        ]


class RunStartInput(StrictInput):
    agent = StrictCharField(max_length=63, help_text="The name of a deployed agent.")
    input = StrictCharField(max_length=MAX_INPUT_CHARS, trim_whitespace=False, help_text="The request, as text.")
    # Items are checked by the service, which names the step at fault (`script_invalid`).
    script = serializers.ListField(
        child=serializers.JSONField(),
        max_length=MAX_SCRIPT_STEPS,
        required=False,
        allow_null=True,
        help_text="Scripted provider only: the steps to follow, each `{respond: text}` or "
        "`{tool_call: {tool, arguments}}`. Default: the manifest test with the same input, if any.",
    )


class DecisionInput(StrictInput):
    # Not trimmed here, nor its length checked: the service checks the text as given (a control
    # character str.strip() takes for a space is refused, not dropped), its length once stripped.
    comment = StrictCharField(
        required=False,
        allow_blank=True,
        default="",
        trim_whitespace=False,
        help_text=f"At most {MAX_COMMENT_CHARS} characters once surrounding spaces are removed; no control or "
        "text-direction characters (`comment_invalid`).",
    )
    step = StrictIntegerField(
        required=False,
        min_value=1,
        max_value=2**31 - 1,  # as MCP's approve_run takes it; a larger one is no step
        help_text="The step (tool call) you reviewed; if the run waits at another one the decision is refused "
        "with `approval_stale`.",
    )
    requested_at = serializers.DateTimeField(
        required=False,
        help_text="The `requested_at` of the approval you reviewed; if the run asked again at that step since "
        "(an overage whose budgets changed), the decision is refused with `approval_stale`.",
    )


# --- lists ------------------------------------------------------------------------------------

RUNS = ListSpec(
    serializer=RunListOutput,
    resource="runs",
    filters=FilterSpec(
        {
            "id": UuidField(),
            "status": EnumField(choices=tuple(Run.Status.values)),
            "agent": StringField(lookup="agent__name"),
            "version": IntegerField(lookup="version__number"),
            "project": StringField(),
            "provider": StringField(),
            "model": StringField(),
            "reason": StringField(),
            "created_by": StringField(),
            "parent": UuidField(lookup="parent_id", nullable=True),
            "step_count": IntegerField(),
            "input_tokens": IntegerField(),
            "output_tokens": IntegerField(),
            "created_at": TimestampField(),
            "started_at": TimestampField(nullable=True),
            "finished_at": TimestampField(nullable=True),
            "updated_at": TimestampField(),
        }
    ),
    ordering=OrderSpec(
        {
            "created_at": None,
            "started_at": None,
            "finished_at": None,
            "updated_at": None,
            "step_count": None,
            "input_tokens": None,
            "output_tokens": None,
            "id": None,
        },
        default="created_at desc",
    ),
)
STEPS = ListSpec(
    serializer=StepOutput,
    resource="steps",
    filters=FilterSpec(
        {
            "index": IntegerField(),
            "node": EnumField(choices=tuple(Step.Node.values)),
            "tool": StringField(),
            "status": EnumField(choices=STEP_STATUSES),
            "error": StringField(),
            "provider": StringField(),
            "model": StringField(),
            "input_tokens": IntegerField(),
            "output_tokens": IntegerField(),
            "duration_ms": DecimalField(),
            "created_at": TimestampField(),
        }
    ),
    ordering=OrderSpec({"index": None, "duration_ms": None, "created_at": None, "id": None}, default="index"),
)
APPROVALS = ListSpec(
    serializer=ApprovalOutput,
    resource="approvals",
    filters=FilterSpec(
        {
            "step": IntegerField(),
            "tool": StringField(),
            "decision": EnumField(choices=tuple(Approval.Decision.values)),
            "approver": StringField(),
            "requested_at": TimestampField(),
            "decided_at": TimestampField(nullable=True),
        }
    ),
    ordering=OrderSpec({"step": None, "requested_at": None, "decided_at": None, "id": None}, default="step"),
)

# --- views ------------------------------------------------------------------------------------

_RUN_ID = OpenApiParameter("run_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The run's id.")
_NOT_FOUND = OpenApiResponse(description="`not_found`: no such run in this workspace.")


def _runs():
    runs = Run.objects.select_related("agent", "version", "domain_version__document")
    return without_version_bodies(runs, "version", "domain_version")


def runs_listed():
    """Runs as lists read them (RunListOutput): their input and output cut in the database, and
    their script not read, so a page's rows stay small whatever the runs hold."""
    return (
        _runs()
        .defer("input", "output", "script")
        .annotate(
            input_head=Left("input", PREVIEW_CHARS),
            output_head=Left("output", PREVIEW_CHARS),
            input_length=Length("input"),
            output_length=Length("output"),
        )
    )


def _run(run_id: str) -> Run:
    """The run with this id, or 404 — also when the id is not a UUID at all."""
    try:
        pk = uuid.UUID(run_id)
    except ValueError:
        raise NotFound() from None
    return get_object_or_404(_runs(), pk=pk)


class RunListApi(TenantAPIView):
    access = {"GET": (Permission.RUNS_VIEW, Scope.READ), "POST": (Permission.RUNS_START, Scope.RUN)}

    @RUNS.schema("runs_list")
    def get(self, request: Request) -> Response:
        return RUNS.respond(request, runs_listed())

    @extend_schema(
        operation_id="runs_start",
        request=RunStartInput,
        parameters=[LOCATION],
        responses={
            201: RunOutput,
            400: OpenApiResponse(description="`input_invalid`, `script_invalid` or invalid fields."),
            404: OpenApiResponse(description="`agent_not_found`: no agent of that name."),
            409: OpenApiResponse(description="`agent_not_deployed`: deploy a version first."),
        },
        description="Start a run of the agent's live deployment. It is queued (201) and a worker picks it up; "
        "poll `GET /runs/{run_id}` (or its steps) to follow it.",
    )
    def post(self, request: Request) -> Response:
        data = RunStartInput(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        agent = (
            Document.objects.select_related("live__version", "live__domain_version__document")
            .filter(kind=Kind.AGENT, name=fields["agent"])
            .first()
        )
        if agent is None:
            raise ServiceError("agent_not_found", f"There is no agent {fields['agent']!r}.", status=404)
        run = run_start(
            actor=request.user, agent=agent, input=fields["input"], script=fields.get("script"), request=request
        )
        return created(RunOutput(run).data, f"runs/{run.pk}")


class RunDetailApi(TenantAPIView):
    access = {"GET": (Permission.RUNS_VIEW, Scope.READ)}

    @extend_schema(operation_id="runs_get", parameters=[_RUN_ID], responses={200: RunOutput, 404: _NOT_FOUND})
    def get(self, request: Request, run_id: str) -> Response:
        return Response(RunOutput(_run(run_id)).data)


class StepListApi(TenantAPIView):
    access = {"GET": (Permission.RUNS_VIEW, Scope.READ)}

    @extend_schema(parameters=[_RUN_ID])
    @STEPS.schema("runs_steps_list")
    def get(self, request: Request, run_id: str) -> Response:
        return STEPS.respond(request, _run(run_id).steps.defer("replay"))


class ApprovalListApi(TenantAPIView):
    access = {"GET": (Permission.RUNS_VIEW, Scope.READ)}

    @extend_schema(parameters=[_RUN_ID])
    @APPROVALS.schema("runs_approvals_list")
    def get(self, request: Request, run_id: str) -> Response:
        return APPROVALS.respond(request, _run(run_id).approvals.all())


class RunCancelApi(TenantAPIView):
    access = {"POST": (Permission.RUNS_START, Scope.RUN)}

    @extend_schema(
        operation_id="runs_cancel",
        parameters=[_RUN_ID],
        request=None,
        responses={200: RunOutput, 404: _NOT_FOUND, 409: OpenApiResponse(description="`run_finished`.")},
        description="Cancel a run: at once when it is queued or waiting for approval; a running run stops "
        "before its next step (`cancel_requested_at` is set, the status follows).",
    )
    def post(self, request: Request, run_id: str) -> Response:
        run = _run(run_id)  # another workspace's id: 404, whatever the body
        no_body(request)
        run = run_cancel(actor=request.user, run=run, request=request)
        return Response(RunOutput(run).data)


class _DecideApi(TenantAPIView):
    access = {"POST": DECIDE_ACCESS}
    approved: bool

    def post(self, request: Request, run_id: str) -> Response:
        run = _run(run_id)  # another workspace's id: 404, whatever the body
        data = DecisionInput(data=request.data)
        data.is_valid(raise_exception=True)
        run = run_decide(
            actor=request.user,
            run=run,
            approved=self.approved,
            comment=data.validated_data["comment"],
            step=data.validated_data.get("step"),
            requested_at=data.validated_data.get("requested_at"),
            request=request,
        )
        return Response(RunOutput(run).data)


def _decide_schema(verb: str, then: str):
    return extend_schema(
        operation_id=f"runs_{verb}",
        parameters=[_RUN_ID],
        request=DecisionInput,
        responses={
            200: RunOutput,
            404: _NOT_FOUND,
            409: OpenApiResponse(description="`run_not_waiting`, `approval_stale`."),
        },
        description=f"{verb.title()} the tool call the run waits for, with an optional comment. The run is queued "
        f"again and {then}",
    )


class RunApproveApi(_DecideApi):
    approved = True

    @_decide_schema("approve", "the call is made.")
    def post(self, request: Request, run_id: str) -> Response:
        return super().post(request, run_id)


class RunRejectApi(_DecideApi):
    approved = False

    @_decide_schema("reject", "the model is told the call was rejected.")
    def post(self, request: Request, run_id: str) -> Response:
        return super().post(request, run_id)
