"""/api/v1/audit: the workspace's audit trail — its events, a verification of its chain, and the
chain's signed checkpoints. Read-only: events are appended only by `audit_record`.

Access: `audit.view` (owners and admins) with the token scope `read` — the trail is only read
here, so a SIEM collector's token needs no power to change anything. Every query runs inside
`rls_scope` of the caller's own chain: the database itself shows no other chain's rows.
"""

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts.permissions import Permission
from apps.audit.chain import time_text
from apps.audit.models import AuditActor, AuditCheckpoint, AuditEvent, Outcome
from apps.audit.scope import chain_of_connection, rls_scope
from apps.audit.services import checkpoint_dict
from apps.audit.verify import BREAK_KINDS, VERIFY_CACHE_SECONDS, chain_status
from apps.tokens.models import Scope
from foundry.api.access import TenantAPIView
from foundry.api.errors import error_body
from foundry.api.lists import ListSpec
from foundry.filtering import EnumField, FilterSpec, IntegerField, StringField, TimestampField
from foundry.filtering.ordering import OrderSpec

MAX_SEQ = 2**63 - 1
_READ = (Permission.AUDIT_VIEW, Scope.READ)

# --- serializers ------------------------------------------------------------------------------


class CanonicalTimeField(serializers.DateTimeField):
    """UTC with microseconds, exactly as the chain hashes it (`2026-01-31T12:00:00.123456Z`)."""

    def to_representation(self, value) -> str:
        return time_text(value)


class ActorOutput(serializers.Serializer):
    id = serializers.CharField(source="actor_id", help_text="Pseudonymous: `user:42`, `token:ab12cd34`, …")
    type = serializers.CharField(source="actor_type", help_text="user, operator, token, service or anonymous.")
    name = serializers.SerializerMethodField(help_text="Null when unknown or erased.")
    email = serializers.SerializerMethodField(help_text="Null when unknown or erased.")
    erased = serializers.SerializerMethodField(help_text="The actor's personal data was erased.")

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_name(self, event: AuditEvent) -> str | None:
        person = _person(event)
        return person.display_name if person else None

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_email(self, event: AuditEvent) -> str | None:
        person = _person(event)
        return person.email if person else None

    def get_erased(self, event: AuditEvent) -> bool:
        person = getattr(event, "person", None)
        return bool(person and person.erased_at)


class EventOutput(serializers.Serializer):
    chain = serializers.IntegerField(source="tenant_id", help_text="The chain's id (this workspace's tenant id).")
    seq = serializers.IntegerField(help_text="Position in the chain: 1, 2, 3… without gaps.")
    occurred_at = CanonicalTimeField()
    actor = ActorOutput(source="*")
    action = serializers.CharField(help_text="Stable dotted name, e.g. `manifest.deploy`, `auth.login.failed`.")
    target_type = serializers.CharField()
    target_id = serializers.CharField()
    outcome = serializers.ChoiceField(choices=Outcome.choices)
    ip = serializers.CharField()
    user_agent = serializers.CharField()
    request_id = serializers.CharField()
    details = serializers.JSONField(source="data")
    prev_hash = serializers.CharField(help_text="The hash of the event before (64 zeros for the first).")
    hash = serializers.CharField(help_text="SHA-256 of the canonical event including prev_hash (docs/audit.md).")


class CheckpointOutput(serializers.Serializer):
    """A signed chain head, exactly as exported (apps.audit.services.checkpoint_dict)."""

    tenant_id = serializers.IntegerField()
    seq = serializers.IntegerField()
    hash = serializers.CharField()
    signed_at = serializers.CharField(help_text="UTC with microseconds, as signed.")
    key_id = serializers.CharField(help_text="The key in /.well-known/foundry-audit-keys.json that signed it.")
    signature = serializers.CharField(help_text="Base64 Ed25519 signature.")

    def to_representation(self, checkpoint: AuditCheckpoint) -> dict:
        return checkpoint_dict(checkpoint)


class BreakOutput(serializers.Serializer):
    seq = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=BREAK_KINDS)
    message = serializers.CharField()


class VerificationOutput(serializers.Serializer):
    chain = serializers.IntegerField()
    intact = serializers.BooleanField()
    events = serializers.IntegerField()
    last_seq = serializers.IntegerField()
    last_hash = serializers.CharField()
    signed_seq = serializers.IntegerField(help_text="The last event a valid signed checkpoint vouches for (0: none).")
    checkpoints = serializers.IntegerField(help_text="Validly signed checkpoints.")
    first_break = BreakOutput(allow_null=True)
    problems = BreakOutput(many=True, help_text="Every break found (at most 100).")
    checked_at = serializers.DateTimeField(help_text="When the chain was verified.")


def _person(event: AuditEvent) -> AuditActor | None:
    person = getattr(event, "person", None)
    return None if person is None or person.erased_at else person


def actors_attach(tenant_id: int, events: list[AuditEvent]) -> None:
    """Give each event its `person` (the AuditActor row, or None); call inside `rls_scope`."""
    ids = {event.actor_id for event in events}
    people = {a.actor_id: a for a in AuditActor.objects.filter(tenant_id=tenant_id, actor_id__in=ids)}
    for event in events:
        event.person = people.get(event.actor_id)


# --- lists ------------------------------------------------------------------------------------

EVENT_FILTERS = FilterSpec(
    {
        "seq": IntegerField(),
        "occurred_at": TimestampField(),
        "time": TimestampField(lookup="occurred_at"),
        "actor": StringField(lookup="actor_id"),
        "actor_type": StringField(),
        "action": StringField(),
        "target_type": StringField(),
        "target_id": StringField(),
        "outcome": EnumField(choices=tuple(Outcome.values)),
        "ip": StringField(),
        "request_id": StringField(),
    }
)
EVENTS = ListSpec(
    serializer=EventOutput,
    resource="events",
    filters=EVENT_FILTERS,
    ordering=OrderSpec({"seq": None, "occurred_at": None}, default="seq desc"),
)
CHECKPOINTS = ListSpec(
    serializer=CheckpointOutput,
    resource="checkpoints",
    filters=FilterSpec({"seq": IntegerField(), "key_id": StringField(), "signed_at": TimestampField()}),
    ordering=OrderSpec({"seq": None, "signed_at": None}, default="seq desc"),
)


def seq_parse(text: str) -> int:
    """A sequence number from the path; anything else (not digits, 0, out of range) is a 404."""
    if not (text.isascii() and text.isdigit() and len(text) <= 19) or not 1 <= int(text) <= MAX_SEQ:
        raise NotFound()
    return int(text)


def events_of(chain: int) -> QuerySet[AuditEvent]:
    """The chain's events (evaluate inside `rls_scope(chain)`)."""
    return AuditEvent.objects.filter(tenant_id=chain)


# --- views ------------------------------------------------------------------------------------

_SEQ = OpenApiParameter("seq", OpenApiTypes.INT, OpenApiParameter.PATH, description="The event's sequence number.")


class AuditEventListApi(TenantAPIView):
    access = {"GET": _READ}

    @EVENTS.schema("audit_events_list")
    def get(self, request: Request) -> Response:
        chain = chain_of_connection()
        with rls_scope(chain):
            page = EVENTS.page(request, events_of(chain))
            actors_attach(chain, page.items)
        rows = EventOutput(page.items, many=True).data
        return Response({"events": rows, "next_page_token": page.next_page_token})


class AuditEventDetailApi(TenantAPIView):
    access = {"GET": _READ}

    @extend_schema(
        operation_id="audit_events_get",
        parameters=[_SEQ],
        responses={200: EventOutput, 404: OpenApiResponse(description="`not_found`: no such event in this chain.")},
    )
    def get(self, request: Request, seq: str) -> Response:
        number = seq_parse(seq)
        chain = chain_of_connection()
        with rls_scope(chain):
            event = events_of(chain).filter(seq=number).first()
            if event is None:
                raise NotFound()
            actors_attach(chain, [event])
        return Response(EventOutput(event).data)


class AuditVerifyApi(TenantAPIView):
    access = {"GET": _READ}

    @extend_schema(
        operation_id="audit_verify",
        responses={
            200: VerificationOutput,
            409: OpenApiResponse(
                description="`verification_running`: another request is verifying this chain now; ask again "
                "after `Retry-After` seconds."
            ),
        },
        description="Recompute this workspace's chain and check its signed checkpoints (it reads every event). "
        f"A verification is kept {VERIFY_CACHE_SECONDS} s and made by one request at a time, as for the "
        "console's badge: `checked_at` says when. `intact` is false when it breaks: `first_break` names the "
        "first sequence number and what is wrong there (`missing`, `link_broken`, `altered`, `rewritten`, "
        "`truncated`, `signature_invalid`). A broken chain is still a 200: the verification itself succeeded.",
    )
    def get(self, request: Request) -> Response:
        status = chain_status(chain_of_connection())
        if status is None:
            message = "This workspace's chain is being verified now; ask again in a few seconds."
            return Response(error_body("verification_running", message), status=409, headers={"Retry-After": "5"})
        return Response(VerificationOutput(status).data)


class AuditCheckpointListApi(TenantAPIView):
    access = {"GET": _READ}

    @CHECKPOINTS.schema("audit_checkpoints_list")
    def get(self, request: Request) -> Response:
        chain = chain_of_connection()
        with rls_scope(chain):
            page = CHECKPOINTS.page(request, AuditCheckpoint.objects.filter(tenant_id=chain))
        rows = CheckpointOutput(page.items, many=True).data
        return Response({"checkpoints": rows, "next_page_token": page.next_page_token})
