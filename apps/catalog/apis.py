"""/api/v1/ domains, agents, versions, diffs, rollbacks, deployments, validation and JSON Schemas."""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts.permissions import Permission
from apps.catalog.models import Deployment, Document, Kind, Version
from apps.catalog.selectors import documents_listed, without_version_bodies
from apps.catalog.services import (
    EDIT,
    agent_deploy_made,
    agent_migrate,
    document_validate,
    version_diff,
    version_get,
    version_publish,
    version_rollback,
)
from apps.tokens.models import Scope
from foundry.api.access import TenantAPIView
from foundry.api.created import LOCATION, created
from foundry.api.fields import StrictCharField, StrictInput, StrictIntegerField
from foundry.api.lists import ListSpec
from foundry.errors import ServiceError, error_response
from foundry.filtering import FilterSpec, IntegerField, StringField, TimestampField
from foundry.filtering.ordering import OrderSpec
from foundry.manifests import schema
from foundry.manifests.loader import MAX_BYTES

# --- serializers ------------------------------------------------------------------------------


class PinOutput(serializers.Serializer):
    name = serializers.CharField(source="document.name")
    version = serializers.IntegerField(source="number")


class VersionOutput(serializers.ModelSerializer):
    name = serializers.CharField(source="document.name")
    kind = serializers.CharField(source="document.kind")
    restored_from = serializers.IntegerField(source="restored_from.number", allow_null=True, default=None)
    domain = PinOutput(source="domain_version", allow_null=True, default=None, help_text="Agents: the pinned DIS.")

    class Meta:
        model = Version
        fields = [
            "kind",
            "name",
            "number",
            "digest",
            "message",
            "author_name",
            "author_email",
            "created_at",
            "restored_from",
            "domain",
        ]


class VersionDetailOutput(VersionOutput):
    class Meta(VersionOutput.Meta):
        fields = [*VersionOutput.Meta.fields, "source", "content"]


class DeploymentOutput(serializers.ModelSerializer):
    agent = serializers.CharField(source="agent.name")
    version = serializers.IntegerField(source="version.number")
    domain = PinOutput(source="domain_version")
    domain_latest_version = serializers.IntegerField(source="domain_version.document.latest_number")
    domain_outdated = serializers.SerializerMethodField(help_text="A newer version of the pinned domain exists.")

    class Meta:
        model = Deployment
        fields = [
            "id",
            "agent",
            "version",
            "domain",
            "domain_latest_version",
            "domain_outdated",
            "reason",
            "deployed_by",
            "created_at",
        ]

    def get_domain_outdated(self, deployment: Deployment) -> bool:
        return deployment.domain_version.number < deployment.domain_version.document.latest_number


class DocumentOutput(serializers.ModelSerializer):
    live = DeploymentOutput(allow_null=True, help_text="Agents: the live deployment, if any.")

    class Meta:
        model = Document
        fields = ["kind", "name", "latest_number", "created_at", "live"]


class ProblemOutput(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    file = serializers.CharField()
    line = serializers.IntegerField()
    column = serializers.IntegerField()
    path = serializers.CharField(help_text="JSON pointer of the value at fault.")


class ContentInput(StrictInput):
    # No max_length: the loader judges the size in bytes (`yaml_too_large`, as `forge` and the
    # console say it); a character count would answer 1 MiB of ASCII otherwise than 600 KiB of
    # accented text. The request body's limit (DATA_UPLOAD_MAX_MEMORY_SIZE) bounds what is read.
    content = StrictCharField(
        trim_whitespace=False, help_text=f"The YAML document (at most {MAX_BYTES} bytes as UTF-8: `yaml_too_large`)."
    )
    filename = StrictCharField(max_length=255, required=False, default="<input>")


# A message's length and characters are the service's to check (`message_invalid`, as the console).
class PublishInput(ContentInput):
    message = StrictCharField(required=False, allow_blank=True, trim_whitespace=False)


class RollbackInput(StrictInput):
    version = StrictIntegerField(min_value=1, max_value=2**31 - 1)
    message = StrictCharField(required=False, allow_blank=True, trim_whitespace=False)


class DeployInput(StrictInput):
    version = StrictIntegerField(min_value=1, max_value=2**31 - 1)


class MigrateInput(StrictInput):
    domain_version = StrictIntegerField(
        min_value=1, max_value=2**31 - 1, required=False, help_text="Default: the domain's latest version."
    )


_ValidationOutput = inline_serializer(
    "Validation",
    {
        "valid": serializers.BooleanField(),
        "kind": serializers.CharField(allow_null=True),
        "name": serializers.CharField(allow_null=True),
        "problems": ProblemOutput(many=True),
    },
)
_INVALID = OpenApiResponse(description="`document_invalid`: `details` lists every problem with file, line and column.")
_PublishOutput = inline_serializer("Published", {"created": serializers.BooleanField(), "version": VersionOutput()})


def _published(kind: str, published) -> Response:
    """201 naming the new version, or 200 with the latest one when nothing was created."""
    version = published.version
    body = {"created": published.created, "version": VersionOutput(version).data}
    if published.created:
        return created(body, f"{kind}s/{version.document.name}/versions/{version.number}")
    return Response(body)


_DiffOutput = inline_serializer(
    "VersionDiff",
    {
        "from": VersionOutput(),
        "to": VersionOutput(),
        "changes": serializers.ListField(child=serializers.DictField()),
        "text": serializers.CharField(help_text="Unified diff of the two YAML sources."),
    },
)

DOCUMENTS = ListSpec(
    serializer=DocumentOutput,
    resource="documents",
    filters=FilterSpec({"name": StringField(), "created_at": TimestampField(), "latest_number": IntegerField()}),
    ordering=OrderSpec({"name": None, "created_at": None, "id": None}, default="name"),
)
VERSIONS = ListSpec(
    serializer=VersionOutput,
    resource="versions",
    filters=FilterSpec(
        {
            "number": IntegerField(),
            "digest": StringField(),
            "author_email": StringField(),
            "message": StringField(),
            "created_at": TimestampField(),
        }
    ),
    ordering=OrderSpec({"number": None, "created_at": None}, default="number desc"),
)
DEPLOYMENTS = ListSpec(
    serializer=DeploymentOutput,
    resource="deployments",
    filters=FilterSpec({"reason": StringField(), "deployed_by": StringField(), "created_at": TimestampField()}),
    ordering=OrderSpec({"created_at": None, "id": None}, default="created_at desc"),
)

# --- views ------------------------------------------------------------------------------------

_VIEW = {Kind.DOMAIN: Permission.DOMAINS_VIEW, Kind.AGENT: Permission.AGENTS_VIEW}


def _document(kind: str, name: str) -> Document:
    """The workspace's agent or domain of that name; 404 `agent_not_found` / `domain_not_found`
    naming it (as runs and MCP answer the same mistake)."""
    document = Document.objects.select_related("live__version", "live__domain_version").filter(kind=kind, name=name)
    found = document.first()
    if found is None:
        raise ServiceError(
            f"{kind}_not_found", f"There is no {kind} named {name[:63]!r} in this workspace.", status=404
        )
    return found


def _related(queryset):
    """Versions as lists show them: with their document and pins, without any version's body."""
    related = queryset.select_related("document", "restored_from", "domain_version__document")
    return without_version_bodies(related, "", "restored_from", "domain_version")


class ValidateApi(TenantAPIView):
    access = {"POST": (Permission.AGENTS_VIEW, Scope.READ)}

    @extend_schema(
        operation_id="documents_validate",
        request=ContentInput,
        responses=_ValidationOutput,
        description="Validate a Domain or Agent document (against this tenant's published domains). Changes nothing.",
    )
    def post(self, request: Request) -> Response:
        data = ContentInput(data=request.data)
        data.is_valid(raise_exception=True)
        result = document_validate(data.validated_data["content"], data.validated_data["filename"])
        body = result.as_dict()
        body.pop("file")
        return Response(body)


class _KindView(TenantAPIView):
    kind: str = ""

    def __init_subclass__(cls, **kwargs):
        if cls.kind:
            cls.access = {method: (_pick(cls, method), scope) for method, (_p, scope) in cls.access.items()}
        super().__init_subclass__(**kwargs)


def _pick(cls, method: str) -> Permission:
    """The access rule of a generic view, made concrete for its kind (GET views, writes edit)."""
    permission = cls.access[method][0]
    if permission == Permission.AGENTS_DEPLOY:
        return permission
    return _VIEW[cls.kind] if method == "GET" else EDIT[cls.kind]


class DocumentListApi(_KindView):
    access = {"GET": (Permission.AGENTS_VIEW, Scope.READ), "POST": (Permission.AGENTS_EDIT, Scope.WRITE)}

    def get(self, request: Request) -> Response:
        return DOCUMENTS.respond(request, documents_listed(self.kind))

    def post(self, request: Request) -> Response:
        data = PublishInput(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        published = version_publish(
            actor=request.user,
            source=fields["content"],
            message=fields.get("message"),
            kind=self.kind,
            file=fields["filename"],
            request=request,
        )
        return _published(self.kind, published)


class DocumentDetailApi(_KindView):
    access = {"GET": (Permission.AGENTS_VIEW, Scope.READ)}

    def get(self, request: Request, name: str) -> Response:
        return Response(DocumentOutput(_document(self.kind, name)).data)


class VersionListApi(_KindView):
    access = {"GET": (Permission.AGENTS_VIEW, Scope.READ)}

    def get(self, request: Request, name: str) -> Response:
        return VERSIONS.respond(request, _related(_document(self.kind, name).versions.all()))


class VersionDetailApi(_KindView):
    access = {"GET": (Permission.AGENTS_VIEW, Scope.READ)}

    def get(self, request: Request, name: str, number: int) -> Response:
        return Response(VersionDetailOutput(version_get(_document(self.kind, name), number)).data)


class DiffApi(_KindView):
    access = {"GET": (Permission.AGENTS_VIEW, Scope.READ)}

    def get(self, request: Request, name: str) -> Response:
        document = _document(self.kind, name)
        params = request.query_params
        if "from" not in params:
            raise ServiceError("from_required", "Say which version to compare from: ?from=N.")
        diff = version_diff(document, params["from"], params.get("to", document.latest_number))
        return Response(
            {
                "from": VersionOutput(diff.old).data,
                "to": VersionOutput(diff.new).data,
                "changes": [c.as_dict() for c in diff.changes],
                "text": diff.text,
            }
        )


class RollbackApi(_KindView):
    access = {"POST": (Permission.AGENTS_EDIT, Scope.WRITE)}

    def post(self, request: Request, name: str) -> Response:
        data = RollbackInput(data=request.data)
        data.is_valid(raise_exception=True)
        published = version_rollback(
            actor=request.user,
            document=_document(self.kind, name),
            number=data.validated_data["version"],
            message=data.validated_data.get("message"),
            request=request,
        )
        return _published(self.kind, published)


_DIFF_PARAMS = [
    OpenApiParameter("from", int, required=True, description="The older version number."),
    OpenApiParameter("to", int, description="The newer version number (default: the latest)."),
]


def _kind_views(kind: str, plural: str) -> dict[str, type]:
    """The concrete views of one kind, with their own OpenAPI operation ids."""

    def make(base, **operations):
        return extend_schema_view(**operations)(type(f"{kind.title()}{base.__name__}", (base,), {"kind": kind}))

    return {
        "list": make(
            DocumentListApi,
            get=DOCUMENTS.schema(f"{plural}_list"),
            post=extend_schema(
                operation_id=f"{plural}_publish",
                request=PublishInput,
                parameters=[LOCATION],
                responses={200: _PublishOutput, 201: _PublishOutput, 422: _INVALID},
                description=f"Publish a {kind} document as its next version. Identical content returns the "
                "latest version (200) and creates nothing.",
            ),
        ),
        "detail": make(DocumentDetailApi, get=extend_schema(operation_id=f"{plural}_get", responses=DocumentOutput)),
        "versions": make(VersionListApi, get=VERSIONS.schema(f"{plural}_versions_list")),
        "version": make(
            VersionDetailApi,
            get=extend_schema(operation_id=f"{plural}_versions_get", responses=VersionDetailOutput),
        ),
        "diff": make(
            DiffApi, get=extend_schema(operation_id=f"{plural}_diff", parameters=_DIFF_PARAMS, responses=_DiffOutput)
        ),
        "rollback": make(
            RollbackApi,
            post=extend_schema(
                operation_id=f"{plural}_rollback",
                request=RollbackInput,
                parameters=[LOCATION],
                responses={200: _PublishOutput, 201: _PublishOutput, 422: _INVALID},
                description="Publish a new version whose content equals the chosen one (checked again, as today's "
                "rules have it: `document_invalid`).",
            ),
        ),
    }


class DeployApi(TenantAPIView):
    access = {"POST": (Permission.AGENTS_DEPLOY, Scope.WRITE)}

    @extend_schema(
        operation_id="agents_deploy",
        request=DeployInput,
        responses={201: DeploymentOutput, 200: DeploymentOutput, 422: _INVALID},
        description="Make a version live: 201 with the new deployment, or 200 with the live one if it already is. "
        "The version is checked again, as today's rules have it (`document_invalid`).",
    )
    def post(self, request: Request, name: str) -> Response:
        data = DeployInput(data=request.data)
        data.is_valid(raise_exception=True)
        document = _document(Kind.AGENT, name)
        deployment, made = agent_deploy_made(
            actor=request.user, document=document, number=data.validated_data["version"], request=request
        )
        return Response(DeploymentOutput(deployment).data, status=201 if made else 200)


class MigrateApi(TenantAPIView):
    access = {"POST": (Permission.AGENTS_DEPLOY, Scope.WRITE)}

    @extend_schema(
        operation_id="agents_migrate",
        request=MigrateInput,
        responses={
            200: inline_serializer(
                "Migration", {"changed": serializers.BooleanField(), "deployment": DeploymentOutput()}
            ),
            409: OpenApiResponse(description="`not_deployed`: deploy a version first."),
            422: _INVALID,
        },
        description="Re-pin the live manifest to a newer version of its domain and redeploy it — only if it is "
        "valid there; otherwise 422 `document_invalid` lists what breaks and nothing changes.",
    )
    def post(self, request: Request, name: str) -> Response:
        data = MigrateInput(data=request.data)
        data.is_valid(raise_exception=True)
        migration = agent_migrate(
            actor=request.user,
            document=_document(Kind.AGENT, name),
            domain_number=data.validated_data.get("domain_version"),
            request=request,
        )
        return Response({"changed": migration.changed, "deployment": DeploymentOutput(migration.deployment).data})


class DeploymentListApi(TenantAPIView):
    access = {"GET": (Permission.AGENTS_VIEW, Scope.READ)}

    @DEPLOYMENTS.schema("agents_deployments_list")
    def get(self, request: Request, name: str) -> Response:
        deployments = _document(Kind.AGENT, name).deployments.select_related(
            "agent", "version", "domain_version__document"
        )
        deployments = without_version_bodies(deployments, "version", "domain_version")
        return DEPLOYMENTS.respond(request, deployments)


DOMAIN_VIEWS = _kind_views(Kind.DOMAIN, "domains")
AGENT_VIEWS = _kind_views(Kind.AGENT, "agents")


@csrf_exempt  # public, and every write is refused: a 405, not a CSRF page
def json_schema(request: HttpRequest, kind: str) -> HttpResponse:
    """The published JSON Schema of a document kind (no sign-in: formats are public); GET or
    HEAD, any other method a JSON 405 like every refusal under /api/v1/."""
    if request.method not in ("GET", "HEAD"):
        response = error_response(
            request, status=405, code="method_not_allowed", message=f'Method "{request.method}" not allowed.'
        )
        response["Allow"] = "GET, HEAD"
        return response
    response = JsonResponse(schema(kind), json_dumps_params={"indent": 2})
    response["Cache-Control"] = "public, max-age=300"
    return response
