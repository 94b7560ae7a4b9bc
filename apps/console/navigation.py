"""The console's navigation. Later features append their entries here, each with the
permission that shows it."""

from dataclasses import dataclass

from apps.accounts.permissions import Permission


@dataclass(frozen=True)
class NavItem:
    label: str
    url_name: str
    permission: Permission | None = None


TENANT_NAV = [
    NavItem("Dashboard", "console:dashboard", Permission.DASHBOARD_VIEW),
    NavItem("Domains", "catalog:domain_list", Permission.DOMAINS_VIEW),
    NavItem("Agents", "catalog:agent_list", Permission.AGENTS_VIEW),
    NavItem("Runs", "runs:run_list", Permission.RUNS_VIEW),
    NavItem("Usage", "billing:usage", Permission.USAGE_VIEW),
    NavItem("Members", "accounts:member_list", Permission.MEMBERS_VIEW),
    NavItem("API tokens", "tokens:token_list", Permission.SETTINGS_MANAGE),
    NavItem("Model providers", "providers:provider_list", Permission.SETTINGS_MANAGE),
    NavItem("Single sign-on", "identity:sso_settings", Permission.SETTINGS_MANAGE),
    NavItem("Audit", "audit:event_list", Permission.AUDIT_VIEW),
    NavItem("SIEM delivery", "audit_sinks:sink_list", Permission.SETTINGS_MANAGE),
    NavItem("Data export", "lifecycle:export_list", Permission.SETTINGS_MANAGE),
    NavItem("Data retention", "lifecycle:retention", Permission.SETTINGS_MANAGE),
]

OPERATOR_NAV = [
    NavItem("Tenants", "operator:tenant_list"),
    NavItem("Plans", "operator:plan_list"),
    NavItem("Import", "lifecycle:tenant_import"),
    NavItem("Audit", "audit:event_list"),
    NavItem("Model prices", "billing:price_list"),
    NavItem("Usage", "billing:platform_usage"),
    NavItem("Health", "operator:health"),
]
