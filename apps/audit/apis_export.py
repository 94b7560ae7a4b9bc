"""/api/v1/audit/export (stream the chain to a SIEM) and /api/v1/audit/sinks (push delivery).

Export: `audit.view` with the token scope `read` — a SIEM collector only reads, so its token
needs no power to change anything (a token of role admin or owner, scopes `read`). Sinks are
workspace settings: `settings.manage` with the scope `admin`, like model providers.
"""

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts.permissions import Permission
from apps.audit.delivery import SinkFields, audit_sink_delete, audit_sink_get, audit_sink_list, audit_sink_set
from apps.audit.export import (
    FORMATS,
    MAX_SEQ,
    audit_export_start,
    chain_head,
    export_cursor_parse,
    export_format_parse,
    export_lines,
)
from apps.audit.models import AuditSink
from apps.audit.scope import chain_of_connection
from apps.tokens.models import Scope
from foundry.api.access import AnyAccept, TenantAPIView
from foundry.api.fields import StrictBooleanField, StrictCharField, StrictInput, StrictIntegerField
from foundry.errors import ServiceError
from foundry.query import query_once

_READ = (Permission.AUDIT_VIEW, Scope.READ)
_MANAGE = (Permission.SETTINGS_MANAGE, Scope.ADMIN)
NDJSON = "application/x-ndjson"


def _flag(value: str | None, name: str) -> bool:
    """true when not given; given, `true` or `false`, as the schema has it (not an empty value)."""
    if value in (None, "true"):
        return True
    if value == "false":
        return False
    raise ServiceError(f"{name}_invalid", f"{name} is true or false.")


class AuditExportApi(TenantAPIView):
    access = {"GET": _READ}
    content_negotiation_class = AnyAccept  # `?format=` names the export format, not a renderer

    @extend_schema(
        operation_id="audit_export",
        parameters=[
            OpenApiParameter("format", str, enum=list(FORMATS), description="`jsonl` (default) or `ocsf`."),
            OpenApiParameter(
                "after",
                {"type": "integer", "minimum": 0, "maximum": MAX_SEQ},
                description="Cursor: export the events after this sequence number (default 0: all). "
                "Resume with the `X-Audit-Through` of the previous export.",
            ),
            OpenApiParameter(
                "checkpoints",
                OpenApiTypes.BOOL,
                description="End with the signed checkpoints that vouch for the events (default true).",
            ),
            *(
                OpenApiParameter(name, str, location=OpenApiParameter.HEADER, response=[200], description=text)
                for name, text in (
                    ("X-Audit-Chain", "The workspace's chain id the events are hashed under."),
                    ("X-Audit-After", "The cursor this export started after."),
                    ("X-Audit-Through", "The last sequence number exported: the next export's `after`."),
                )
            ),
        ],
        responses={
            (200, NDJSON): OpenApiResponse(
                OpenApiTypes.STR,
                description="One JSON object per line: the events in sequence order, then the checkpoints "
                "(docs/audit-siem.md). Headers: `X-Audit-Chain`, `X-Audit-After`, `X-Audit-Through`.",
            ),
            400: OpenApiResponse(
                description="`format_invalid`, `cursor_invalid`, `cursor_beyond_head` or `checkpoints_invalid`."
            ),
        },
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        fmt = export_format_parse(query_once(request.query_params, "format", "format_invalid"))
        after = export_cursor_parse(query_once(request.query_params, "after", "cursor_invalid"))
        checkpoints = _flag(query_once(request.query_params, "checkpoints", "checkpoints_invalid"), "checkpoints")
        span = audit_export_start(
            tenant_id=chain_of_connection(), fmt=fmt, after=after, actor=request.user, request=request._request
        )
        # Each batch is read in a scope (transaction) of its own, while the response streams.
        response = StreamingHttpResponse(
            export_lines(span, fmt=fmt, checkpoints=checkpoints), content_type=f"{NDJSON}; charset=utf-8"
        )
        suffix = "ocsf.jsonl" if fmt == "ocsf" else "jsonl"
        name = f"audit-{request._request.tenant.slug}-{span.after + 1}-{span.through}.{suffix}"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        response["Cache-Control"] = "no-store"
        response["X-Audit-Chain"] = str(span.tenant_id)
        response["X-Audit-After"] = str(span.after)
        response["X-Audit-Through"] = str(span.through)
        return response


# --- sinks ----------------------------------------------------------------------------------


class SinkOutput(serializers.ModelSerializer):
    has_secret = serializers.BooleanField(read_only=True, help_text="A webhook signing secret is set (never shown).")
    head = serializers.SerializerMethodField(help_text="The chain's last sequence number.")
    pending = serializers.SerializerMethodField(help_text="Events not yet acknowledged by the receiver.")

    class Meta:
        model = AuditSink
        fields = [
            "name",
            "kind",
            "format",
            "enabled",
            "host",
            "port",
            "tls",
            "url",
            "has_secret",
            "ca_certificate",
            "cursor",
            "head",
            "pending",
            "delivered_at",
            "failures",
            "next_attempt_at",
            "last_error_code",
            "last_error",
            "created_by",
            "created_at",
            "updated_by",
            "updated_at",
        ]
        extra_kwargs = {
            "cursor": {"help_text": "The last sequence number the receiver acknowledged."},
            "next_attempt_at": {"help_text": "Backing off after failures until then (null: due now)."},
        }

    def get_head(self, sink: AuditSink) -> int:
        return self.context["head"]

    def get_pending(self, sink: AuditSink) -> int:
        return max(self.context["head"] - sink.cursor, 0)


class SinkInput(StrictInput):
    # Kind, format, port and cursor are judged by the service (delivery.py `_validate`), which
    # answers the documented codes (kind_invalid, format_invalid, port_invalid, cursor_invalid)
    # rather than DRF's invalid_choice, min_value and max_value.
    kind = StrictCharField(max_length=20, help_text=f"One of {', '.join(AuditSink.Kind.values)}.")
    format = StrictCharField(
        max_length=20, required=False, default="jsonl", help_text=f"One of {', '.join(AuditSink.Format.values)}."
    )
    enabled = StrictBooleanField(required=False, default=True)
    host = StrictCharField(max_length=253, required=False, allow_blank=True, default="", help_text="syslog only.")
    port = StrictIntegerField(
        required=False,
        allow_null=True,
        default=None,
        help_text="Default 6514 (TLS), 601.",
    )
    tls = StrictBooleanField(required=False, allow_null=True, default=None, help_text="syslog only; default on.")
    url = StrictCharField(max_length=500, required=False, allow_blank=True, default="", help_text="webhook: https.")
    secret = StrictCharField(
        max_length=500,
        required=False,
        allow_blank=True,
        write_only=True,
        trim_whitespace=False,
        help_text="webhook HMAC key (16-500 characters). Leave out to keep the stored one; empty removes it.",
    )
    ca_certificate = StrictCharField(
        max_length=65536,
        required=False,
        allow_blank=True,
        default="",
        trim_whitespace=False,
        help_text="PEM CA certificates to trust instead of the public CAs.",
    )
    cursor = StrictIntegerField(
        required=False,
        help_text="Deliver the events after this sequence number (rewind or skip). Leave out to keep.",
    )

    def to_internal_value(self, data):
        if isinstance(data, dict):
            for name in ("enabled", "tls"):  # DRF would take "yes" or 1 for true
                if data.get(name) is not None and not isinstance(data[name], bool):
                    raise serializers.ValidationError(
                        {name: [serializers.ErrorDetail("Must be true or false.", "invalid")]}
                    )
            for name in ("port", "cursor"):
                if data.get(name) is not None and (isinstance(data[name], bool) or not isinstance(data[name], int)):
                    raise serializers.ValidationError(
                        {name: [serializers.ErrorDetail("Must be an integer.", f"{name}_invalid")]}
                    )
        try:
            return super().to_internal_value(data)
        except serializers.ValidationError as exc:
            # A value too long, or of another type, is a bad value of the field: its documented code.
            if isinstance(exc.detail, dict):
                for name in set(exc.detail) & {"kind", "format", "host", "url"}:
                    exc.detail[name] = [
                        serializers.ErrorDetail(str(each), f"{name}_invalid")
                        if getattr(each, "code", None) in ("max_length", "invalid")
                        else each
                        for each in exc.detail[name]
                    ]
            raise


_SINK_PATH = OpenApiParameter("name", str, OpenApiParameter.PATH, description="The sink's name.")
_NOT_FOUND = OpenApiResponse(description="`sink_not_found`.")


def _output(sinks, *, many: bool = False):
    return SinkOutput(sinks, many=many, context={"head": chain_head(chain_of_connection())}).data


class SinkListApi(TenantAPIView):
    access = {"GET": _MANAGE}

    @extend_schema(
        operation_id="audit_sinks_list",
        responses={200: inline_serializer("AuditSinks", {"sinks": SinkOutput(many=True)})},
    )
    def get(self, request: Request) -> Response:
        sinks = audit_sink_list(chain_of_connection())
        return Response({"sinks": _output(sinks, many=True)})


class SinkDetailApi(TenantAPIView):
    access = {"GET": _MANAGE, "PUT": _MANAGE, "DELETE": _MANAGE}

    @extend_schema(
        operation_id="audit_sinks_get", parameters=[_SINK_PATH], responses={200: SinkOutput, 404: _NOT_FOUND}
    )
    def get(self, request: Request, name: str) -> Response:
        return Response(_output(audit_sink_get(chain_of_connection(), name)))

    @extend_schema(
        operation_id="audit_sinks_set",
        parameters=[_SINK_PATH],
        request=SinkInput,
        responses={
            200: SinkOutput,
            201: SinkOutput,
            409: OpenApiResponse(description="`sink_conflict` or `sink_limit`."),
            503: OpenApiResponse(description="`encryption_not_configured`: a secret cannot be stored."),
        },
        description="Create (201) or replace (200) a sink: `syslog` (host, port, tls, ca_certificate) or `webhook` "
        "(url, secret, ca_certificate). Invalid fields: 400 with a code per field, e.g. `host_required`, "
        "`url_insecure`, `sink_address_refused`, `field_not_supported`, `cursor_invalid`.",
    )
    def put(self, request: Request, name: str) -> Response:
        data = SinkInput(data=request.data)
        data.is_valid(raise_exception=True)
        sink = audit_sink_set(
            tenant=request._request.tenant,
            name=name,
            fields=SinkFields(**data.validated_data),
            actor=request.user,
            request=request._request,
        )
        return Response(_output(sink), status=201 if sink.just_created else 200)

    @extend_schema(operation_id="audit_sinks_delete", parameters=[_SINK_PATH], responses={204: None, 404: _NOT_FOUND})
    def delete(self, request: Request, name: str) -> Response:
        audit_sink_delete(tenant=request._request.tenant, name=name, actor=request.user, request=request._request)
        return Response(status=204)
