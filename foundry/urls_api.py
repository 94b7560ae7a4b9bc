"""/api/ on tenant hosts: v1 resources, the OpenAPI schema and its interactive docs (offline)."""

from django.urls import include, path

from apps.accounts.apis import MemberDetailApi, MemberInviteApi, MemberListApi, WorkspaceApi
from apps.audit.apis import AuditCheckpointListApi, AuditEventDetailApi, AuditEventListApi, AuditVerifyApi
from apps.audit.apis_export import AuditExportApi, SinkDetailApi, SinkListApi
from apps.billing.apis import BudgetListApi
from apps.billing.apis_statement import UsageStatementApi
from apps.catalog.apis import (
    AGENT_VIEWS,
    DOMAIN_VIEWS,
    DeployApi,
    DeploymentListApi,
    MigrateApi,
    ValidateApi,
    json_schema,
)
from apps.identity.apis import SsoApi
from apps.lifecycle.apis_export import ExportDetailApi, ExportDownloadApi, ExportListApi
from apps.lifecycle.apis_lifecycle import MemberEraseApi, WorkspaceDeletionApi
from apps.lifecycle.apis_retention import RetentionPolicyApi, RetentionPreviewApi
from apps.providers.apis import CredentialDetailApi, CredentialListApi
from apps.runs.apis import (
    ApprovalListApi,
    RunApproveApi,
    RunCancelApi,
    RunDetailApi,
    RunListApi,
    RunRejectApi,
    StepListApi,
)
from apps.tokens.apis import TokenDetailApi, TokenListApi
from foundry.api.schema import DocsView, SchemaView


def _documents(plural: str, views: dict) -> list:
    return [
        path(f"{plural}", views["list"].as_view(), name=f"{plural}_list"),
        path(f"{plural}/<slug:name>", views["detail"].as_view(), name=f"{plural}_detail"),
        path(f"{plural}/<slug:name>/versions", views["versions"].as_view(), name=f"{plural}_versions"),
        path(f"{plural}/<slug:name>/versions/<int:number>", views["version"].as_view(), name=f"{plural}_version"),
        path(f"{plural}/<slug:name>/diff", views["diff"].as_view(), name=f"{plural}_diff"),
        path(f"{plural}/<slug:name>/rollback", views["rollback"].as_view(), name=f"{plural}_rollback"),
    ]


v1 = [
    path("workspace", WorkspaceApi.as_view(), name="workspace"),
    path("workspace/deletion", WorkspaceDeletionApi.as_view(), name="workspace_deletion"),
    path("retention", RetentionPolicyApi.as_view(), name="retention"),
    path("retention/preview", RetentionPreviewApi.as_view(), name="retention_preview"),
    path("members", MemberListApi.as_view(), name="member_list"),
    path("members/erase", MemberEraseApi.as_view(), name="member_erase"),
    path("members/<int:member_id>", MemberDetailApi.as_view(), name="member_detail"),
    path("members/<int:member_id>/invite", MemberInviteApi.as_view(), name="member_invite"),
    path("tokens", TokenListApi.as_view(), name="token_list"),
    path("tokens/<int:token_id>", TokenDetailApi.as_view(), name="token_detail"),
    path("providers", CredentialListApi.as_view(), name="provider_list"),
    path("providers/<str:provider>", CredentialDetailApi.as_view(), name="provider_detail"),
    path("sso", SsoApi.as_view(), name="sso"),
    path("schemas/domain.json", json_schema, {"kind": "domain"}, name="schema_domain"),
    path("schemas/agent.json", json_schema, {"kind": "agent"}, name="schema_agent"),
    path("validate", ValidateApi.as_view(), name="validate"),
    *_documents("domains", DOMAIN_VIEWS),
    *_documents("agents", AGENT_VIEWS),
    path("agents/<slug:name>/deploy", DeployApi.as_view(), name="agent_deploy"),
    path("agents/<slug:name>/migrate", MigrateApi.as_view(), name="agent_migrate"),
    path("agents/<slug:name>/deployments", DeploymentListApi.as_view(), name="agent_deployments"),
    # Run ids are matched as text and parsed by the view: a malformed id is a 404, like an unknown one.
    path("budgets", BudgetListApi.as_view(), name="budgets"),
    path("usage/statement", UsageStatementApi.as_view(), name="usage_statement"),
    path("runs", RunListApi.as_view(), name="run_list"),
    path("runs/<str:run_id>", RunDetailApi.as_view(), name="run_detail"),
    path("runs/<str:run_id>/steps", StepListApi.as_view(), name="run_steps"),
    path("runs/<str:run_id>/approvals", ApprovalListApi.as_view(), name="run_approvals"),
    path("runs/<str:run_id>/cancel", RunCancelApi.as_view(), name="run_cancel"),
    path("runs/<str:run_id>/approve", RunApproveApi.as_view(), name="run_approve"),
    path("runs/<str:run_id>/reject", RunRejectApi.as_view(), name="run_reject"),
    # The audit trail, read-only; sequence numbers are matched as text and parsed like run ids.
    path("audit/events", AuditEventListApi.as_view(), name="audit_event_list"),
    path("audit/events/<str:seq>", AuditEventDetailApi.as_view(), name="audit_event_detail"),
    path("audit/verify", AuditVerifyApi.as_view(), name="audit_verify"),
    path("audit/checkpoints", AuditCheckpointListApi.as_view(), name="audit_checkpoint_list"),
    path("audit/export", AuditExportApi.as_view(), name="audit_export"),
    path("audit/sinks", SinkListApi.as_view(), name="audit_sink_list"),
    path("audit/sinks/<str:name>", SinkDetailApi.as_view(), name="audit_sink_detail"),
    # Whole-workspace export jobs (docs/export-jobs.md); a malformed id is 404 export_not_found.
    path("exports", ExportListApi.as_view(), name="export_list"),
    path("exports/<str:export_id>", ExportDetailApi.as_view(), name="export_detail"),
    path("exports/<str:export_id>/download", ExportDownloadApi.as_view(), name="export_download"),
]

urlpatterns = [
    path("v1/", include((v1, "api"))),
    path("schema/", SchemaView.as_view(), name="api_schema"),
    # Its script is a file of its own (docs/?script): the Content-Security-Policy allows no inline one.
    path(
        "docs/",
        DocsView.as_view(url_name="api_schema", template_name="api/swagger_ui.html"),
        name="api_docs",
    ),
]
