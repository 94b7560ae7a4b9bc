"""/api/v1/exports: start an export of the workspace, follow its progress, download the archive.

Owners and admins only (`settings.manage`): an archive holds all the workspace's data. Starting
one needs a token's `admin` scope; reading and downloading, `read`. A download needs the signed,
expiring link of the export (`download_url`) as well (docs/export-jobs.md).
"""

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts.permissions import Permission
from apps.lifecycle.exports import (
    export_download_url,
    export_downloadable_by,
    export_error,
    export_file_response,
    export_for_download,
    export_get,
    export_link_expired,
    export_start,
)
from apps.lifecycle.models import Export
from apps.tokens.models import Scope
from foundry.api.access import AnyAccept, TenantAPIView
from foundry.api.fields import no_body
from foundry.api.lists import ListSpec
from foundry.filtering import EnumField, FilterSpec, TimestampField
from foundry.filtering.ordering import OrderSpec

_START = (Permission.SETTINGS_MANAGE, Scope.ADMIN)
_READ = (Permission.SETTINGS_MANAGE, Scope.READ)


class ExportOutput(serializers.ModelSerializer):
    error = serializers.SerializerMethodField(help_text="Why a failed export failed: {code, message}; else null.")
    expired = serializers.SerializerMethodField(help_text="The download link has expired.")
    download_url = serializers.SerializerMethodField(
        help_text="The signed download link (path), until `expires_at`; null before success or after expiry."
    )

    class Meta:
        model = Export
        fields = [
            "id",
            "status",
            "rows_done",
            "rows_total",
            "size",
            "sha256",
            "error",
            "created_by",
            "password_hashes",
            "created_at",
            "finished_at",
            "expires_at",
            "expired",
            "download_url",
        ]
        extra_kwargs = {
            "rows_done": {"help_text": "Rows written so far (progress: rows_done / rows_total)."},
            "size": {"help_text": "The archive's size in bytes."},
            "sha256": {"help_text": "SHA-256 of the whole archive, hex."},
            "password_hashes": {
                "help_text": "Whether the archive holds members' password hashes: only an owner's export does "
                "(anyone else's exports them unusable, listed in the manifest's secrets_omitted)."
            },
        }

    def get_error(self, export: Export) -> dict | None:
        if export.status != Export.Status.FAILED:
            return None
        code, message = export_error(export)
        return {"code": code, "message": message}

    def get_expired(self, export: Export) -> bool:
        return export_link_expired(export)

    def get_download_url(self, export: Export) -> str | None:
        request = self.context.get("request")
        if export.status != Export.Status.SUCCEEDED or export_link_expired(export):
            return None
        if not export_downloadable_by(export, getattr(request, "user", None)):
            return None  # an owner's export, which holds password hashes: an owner's to download
        return export_download_url(export)


EXPORTS = ListSpec(
    serializer=ExportOutput,
    resource="exports",
    filters=FilterSpec(
        {
            "status": EnumField(choices=tuple(Export.Status.values)),
            "created_at": TimestampField(),
            "finished_at": TimestampField(nullable=True),
        }
    ),
    ordering=OrderSpec({"created_at": None, "id": None}, default="created_at desc"),
)
_EXPORT_PATH = OpenApiParameter("export_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The export's id.")
_NOT_FOUND = OpenApiResponse(description="`export_not_found` (also for a malformed id).")


class ExportListApi(TenantAPIView):
    access = {"GET": _READ, "POST": _START}

    @EXPORTS.schema("exports_list")
    def get(self, request: Request) -> Response:
        return EXPORTS.respond(request, Export.objects.all())

    @extend_schema(
        operation_id="exports_start",
        request=None,
        responses={
            202: ExportOutput,
            409: OpenApiResponse(description="`export_in_progress`: one export at a time per workspace."),
        },
        description="Queue an export of the whole workspace; follow it at `GET /exports/{id}`.",
    )
    def post(self, request: Request) -> Response:
        no_body(request)
        export = export_start(actor=request.user, request=request._request)
        return Response(ExportOutput(export, context={"request": request}).data, status=202)


class ExportDetailApi(TenantAPIView):
    access = {"GET": _READ}

    @extend_schema(
        operation_id="exports_get", parameters=[_EXPORT_PATH], responses={200: ExportOutput, 404: _NOT_FOUND}
    )
    def get(self, request: Request, export_id) -> Response:
        return Response(ExportOutput(export_get(export_id=export_id), context={"request": request}).data)


class ExportDownloadApi(TenantAPIView):
    access = {"GET": _READ}
    content_negotiation_class = AnyAccept  # the archive is a file whatever Accept asks; errors JSON

    @extend_schema(
        operation_id="exports_download",
        parameters=[
            _EXPORT_PATH,
            OpenApiParameter("signature", str, required=True, description="From the export's `download_url`."),
        ],
        responses={
            (200, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY, description="The archive."),
            403: OpenApiResponse(
                description="`link_invalid`: the signature is missing or wrong; `export_owners_only`: the archive"
                " holds password hashes (an owner's export), which only an owner downloads."
            ),
            404: _NOT_FOUND,
            410: OpenApiResponse(description="`export_expired`: the link's time is up; start a new export."),
        },
    )
    def get(self, request: Request, export_id) -> FileResponse:
        export = export_for_download(
            export_id=export_id,
            signature=request.query_params.get("signature"),
            actor=request.user,
            request=request._request,
        )
        return export_file_response(export)
