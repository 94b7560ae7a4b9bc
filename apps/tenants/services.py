"""Tenant lifecycle: provision, suspend, resume; operators' limits: a tenant's overrides
(`tenant_limits_set`) and the plans' values (`plan_update`). Each writes its audit events in the
same transaction as the change, so a change without its record (or the reverse) cannot happen."""

import ipaddress
import re
import unicodedata
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.http import HttpRequest
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.accounts.permissions import Permission, Role
from apps.accounts.services import allowed_now, email_clean
from apps.accounts.sessions import sessions_all_end
from apps.audit.services import audit_record
from apps.tenants.models import Domain, Plan, Tenant
from apps.tenants.routing import route_invalidate
from apps.tenants.schemas import schema_create, schema_is_present
from foundry.errors import ServiceError

# A DNS label: lowercase letter first, letters/digits/hyphens, no trailing hyphen, ≤ 63.
SLUG_RE = re.compile(r"^[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")
RESERVED_SLUGS = frozenset(
    {
        "admin",
        "api",
        "app",
        "assets",
        "auth",
        "billing",
        "cdn",
        "console",
        "default",
        "docs",
        "ftp",
        "help",
        "internal",
        "localhost",
        "login",
        "mail",
        "mcp",
        "media",
        "metrics",
        "operator",
        "platform",
        "public",
        "root",
        "smtp",
        "sso",
        "static",
        "status",
        "support",
        "system",
        "www",
        "information-schema",
    }
)


def tenant_slug_validate(slug: str) -> str:
    """Return the slug if it may name a new tenant; raise ValidationError with a code if not."""
    if not slug:
        raise ValidationError("A slug is required.", code="slug_required")
    if len(slug) > 63:
        raise ValidationError("A slug has at most 63 characters.", code="slug_too_long")
    if not SLUG_RE.match(slug):
        raise ValidationError(
            "A slug uses lowercase letters, digits and hyphens, starts with a letter and does not end with a hyphen.",
            code="slug_invalid",
        )
    if slug in RESERVED_SLUGS or slug.startswith(("pg-", "xn--")):
        raise ValidationError(f"“{slug}” is reserved.", code="slug_reserved")
    return slug


def schema_name_for_slug(slug: str) -> str:
    # Slugs never contain "_", so mapping "-" to "_" keeps names unique and unquoted-safe.
    return slug.replace("-", "_")


def tenant_domain_for_slug(slug: str) -> str:
    return f"{slug}.{settings.FOUNDRY_BASE_DOMAIN}"


@dataclass(frozen=True)
class ProvisionedTenant:
    tenant: Tenant
    owner: User


def tenant_name_problem(name: str) -> ValidationError | None:
    """Why `name` cannot name a workspace (provisioning and import judge it alike), or None."""
    if not name.strip():
        return ValidationError("A name is required.", code="name_required")
    if len(name.strip()) > 200:  # stored stripped
        return ValidationError("A name has at most 200 characters.", code="name_too_long")
    # C0, DEL, C1, invisible, line breaks; lone surrogates (a stray byte of a shell not in UTF-8)
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Cs") for ch in name):
        return ValidationError("A name cannot contain control characters.", code="name_invalid")
    return None


def _provision_inputs_validate(
    *, slug: str, name: str, plan: str, owner_email: str, owner_password: str | None
) -> None:
    errors: dict[str, list[ValidationError]] = {}

    def add(field: str, error: ValidationError) -> None:
        errors.setdefault(field, []).extend(error.error_list)

    try:
        tenant_slug_validate(slug)
    except ValidationError as e:
        add("slug", e)
    else:
        schema = schema_name_for_slug(slug)
        if Tenant.objects.filter(slug=slug).exists() or schema_is_present(schema):
            add("slug", ValidationError(f"“{slug}” is already taken.", code="slug_taken"))
        elif Domain.objects.filter(domain=tenant_domain_for_slug(slug)).exists():
            add("slug", ValidationError("That address is already in use.", code="domain_taken"))
    if (problem := tenant_name_problem(name)) is not None:
        add("name", problem)
    if plan not in Tenant.Plan.values:
        add("plan", ValidationError(f"Unknown plan “{plan}”.", code="plan_invalid"))
    try:
        email_clean(owner_email)
    except ValidationError as e:
        add("owner_email", e)
    if owner_password:
        try:
            validate_password(owner_password, User(email=owner_email))
        except ValidationError as e:
            add("owner_password", ValidationError(" ".join(e.messages), code="password_weak"))
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def tenant_provision(
    *,
    slug: str,
    name: str,
    owner_email: str,
    plan: str = Tenant.Plan.FREE,
    owner_password: str | None = None,
    actor: object = None,
    method: str | None = None,
    request: HttpRequest | None = None,
) -> ProvisionedTenant:
    """Create a tenant with its schema, domain and first owner, or nothing at all.

    Without `owner_password` the owner gets an unusable password and signs in through an
    invitation link (apps.accounts.services.member_invite_url), issued now (`invited_at`).
    """
    slug = slug.strip()
    _provision_inputs_validate(slug=slug, name=name, plan=plan, owner_email=owner_email, owner_password=owner_password)
    owner_email = email_clean(owner_email)  # as member_add stores it (lowered before the check, K passed as k)
    connection.set_schema_to_public()
    try:
        with transaction.atomic():
            tenant = Tenant.objects.create(
                schema_name=schema_name_for_slug(slug), slug=slug, name=name.strip(), plan=plan
            )
    except IntegrityError:  # the same slug, provisioned concurrently, committed first
        taken = ValidationError(f"“{slug}” is already taken.", code="slug_taken")
        raise ValidationError({"slug": taken}) from None
    schema_create(tenant.schema_name, method=method)
    domain = Domain.objects.create(domain=tenant_domain_for_slug(slug), tenant=tenant, is_primary=True)
    with schema_context(tenant.schema_name):
        invited_at = None if owner_password else timezone.now()
        owner = User.objects.create_user(owner_email, owner_password, role=Role.OWNER, invited_at=invited_at)
        audit_record(
            action="tenant.provisioned",
            actor=actor or "system",
            target=tenant,
            data={"plan": plan, "owner": f"user:{owner.pk}"},
            request=request,
        )
    tenant.member_count = 1
    tenant.save(update_fields=["member_count"])
    audit_record(
        action="tenant.provisioned",
        actor=actor or "system",
        target=tenant,
        data={"plan": plan, "domain": domain.domain},
        request=request,
    )
    transaction.on_commit(lambda: route_invalidate(domain.domain))
    return ProvisionedTenant(tenant=tenant, owner=owner)


def tenant_row_locked(tenant: Tenant) -> Tenant:
    """The tenant's row read afresh and locked to the end of the transaction; `tenant_not_found`
    (404) when it is gone — purged by another operator between the page's lookup and this."""
    row = Tenant.objects.select_for_update().filter(pk=tenant.pk).first()
    if row is None:
        raise ServiceError("tenant_not_found", f"There is no workspace {tenant.slug!r} any more.", status=404)
    return row


def _tenant_status_set(
    *, tenant: Tenant, status: str, actor: object, action: str, request: HttpRequest | None = None
) -> tuple[Tenant, bool]:
    """The tenant in `status`, and whether this call put it there (False: it was already)."""
    connection.set_schema_to_public()
    tenant = tenant_row_locked(tenant)
    if tenant.status == status:
        return tenant, False
    if tenant.status == Tenant.Status.DELETING:
        # Leaving that state is cancelling the deletion (apps/lifecycle/deletion.py), not this.
        raise ServiceError(
            "deletion_scheduled", f"{tenant.slug} is scheduled for deletion; cancel the deletion first.", status=409
        )
    tenant.status = status
    tenant.status_changed_at = timezone.now()
    tenant.save(update_fields=["status", "status_changed_at"])
    data = None
    if status == Tenant.Status.SUSPENDED:  # resumed, nobody is signed in: a cookie of before opens nothing
        data = {"sessions_ended": sessions_all_end(tenant.schema_name)}
    audit_record(action=action, actor=actor or "system", target=tenant, request=request, data=data)
    hosts = list(tenant.domains.values_list("domain", flat=True))
    transaction.on_commit(lambda: route_invalidate(*hosts))
    return tenant, True


@transaction.atomic
def tenant_suspend(*, tenant: Tenant, actor: object = None, request: HttpRequest | None = None) -> Tenant:
    """Block every access to the tenant: console, API, MCP and its tasks."""
    return _tenant_status_set(
        tenant=tenant, status=Tenant.Status.SUSPENDED, actor=actor, action="tenant.suspended", request=request
    )[0]


@transaction.atomic
def tenant_resume(*, tenant: Tenant, actor: object = None, request: HttpRequest | None = None) -> Tenant:
    """Give access back; the work its suspension held back goes back to workers (none when it was
    active already: its queued runs, some waiting for a slot, are not all sent again). Every
    erasure registered for it is made again first, should it hold a person erased since (a
    restore that died before it made them again left it suspended): none is, nothing to do."""
    from apps.lifecycle.erasure import erasures_reapply  # lifecycle depends on tenants

    if Tenant.objects.filter(pk=tenant.pk, status=Tenant.Status.SUSPENDED).exists():
        erasures_reapply(tenant, actor="lifecycle")  # the platform's doing, whoever resumes
    tenant, resumed = _tenant_status_set(
        tenant=tenant, status=Tenant.Status.ACTIVE, actor=actor, action="tenant.resumed", request=request
    )
    if resumed:
        tenant_work_resume(tenant.schema_name)
    return tenant


def tenant_work_resume(schema: str) -> None:
    """Once the transaction that made the workspace active again commits: its queued runs and
    exports go back to workers. A task delivered while it was suspended or scheduled for
    deletion was refused (foundry/celery.py TenantTask) and will not come again."""
    # Runs and exports depend on tenants, not the other way round.
    from apps.lifecycle.tasks import exports_resume
    from apps.runs.tasks import run_sweep_tenant

    transaction.on_commit(lambda: run_sweep_tenant.apply_async(args=[schema], kwargs={"resumed": True}), robust=True)
    transaction.on_commit(lambda: exports_resume.apply_async(args=[schema]), robust=True)


def http_networks_clean(networks: list) -> list[str]:
    """The networks as CIDRs, each once; ServiceError `network_invalid` for one that is none or
    that admits every address (a prefix of 0), or a list whose networks do together (0.0.0.0/1
    and 128.0.0.0/1)."""
    cleaned = []
    for value in networks:
        try:
            network = ipaddress.ip_network(str(value).strip(), strict=False)
        except ValueError:
            raise ServiceError("network_invalid", f"{value!r} is not an IP network (CIDR, e.g. 10.1.0.0/16).") from None
        if network.prefixlen == 0:
            raise ServiceError("network_invalid", f"{value!r} would admit every address; list the networks needed.")
        if "%" in str(network):  # an IPv6 zone id (fe80::%eth0/64) names an interface, not addresses
            network = ipaddress.ip_network(f"{str(network.network_address).split('%')[0]}/{network.prefixlen}")
        if str(network) not in cleaned:
            cleaned.append(str(network))
    for version, everything in ((4, "0.0.0.0/0"), (6, "::/0")):
        family = [ipaddress.ip_network(each) for each in cleaned if ipaddress.ip_network(each).version == version]
        if list(ipaddress.collapse_addresses(family)) == [ipaddress.ip_network(everything)]:
            raise ServiceError(
                "network_invalid", f"Together these admit every address ({everything}); list the networks needed."
            )
    return cleaned


@transaction.atomic
def tenant_http_networks_set(
    *,
    tenant: Tenant,
    networks: list[str] | None = None,
    allow: list[str] = (),
    remove: list[str] = (),
    actor: object = None,
) -> Tenant:
    """Set the private networks (CIDRs) the tenant's agent `http` tools may reach — `networks`, or
    the ones it has (read under the row's lock: two operators' changes both hold) with `allow`
    added and `remove` taken out. Operators only: a private address may be the platform's own, so
    tenants cannot set this themselves."""
    added = http_networks_clean(list(allow))
    removed = set(http_networks_clean(list(remove)))
    cleaned = http_networks_clean(networks) if networks is not None else None
    connection.set_schema_to_public()
    tenant = tenant_row_locked(tenant)
    before = list(tenant.http_allowed_networks)
    if cleaned is None:
        cleaned = [n for n in http_networks_clean(before + added) if n not in removed]
    tenant.http_allowed_networks = cleaned
    tenant.save(update_fields=["http_allowed_networks"])
    audit_record(
        action="tenant.http_networks.set",
        actor=actor or "system",
        target=tenant,
        data={"before": before, "after": cleaned},
    )
    return tenant


@transaction.atomic
def tenant_limits_set(
    *, tenant: Tenant, overrides: dict[str, int | None], actor: object = None, request: HttpRequest | None = None
) -> Tenant:
    """Override some of the plan's limits for this tenant (None: back to the plan's value).
    Operators only; an audit event on the platform chain records before and after.

    Refused (`limit_unknown`, `limit_invalid`): a ServiceError naming every bad value, with
    `details` mapping each limit to its message, and nothing changed."""
    from apps.audit.models import PLATFORM
    from apps.tenants.limits import LIMIT_NAMES, limits_cache_clear

    problems: dict[str, str] = {}
    for name, value in overrides.items():
        if name not in LIMIT_NAMES:
            problems[name] = f"{name!r} is not a limit; one of {', '.join(LIMIT_NAMES)}."
        elif value is not None and (message := limit_problem(name, value)):
            problems[name] = message
    if problems:
        code = "limit_unknown" if set(problems) - set(LIMIT_NAMES) else "limit_invalid"
        raise ServiceError(code, " ".join(problems.values()), details=problems)
    connection.set_schema_to_public()
    tenant = tenant_row_locked(tenant)
    fields = [f"{name}_override" for name in overrides]
    before = {name: getattr(tenant, f"{name}_override") for name in LIMIT_NAMES}
    for name, value in overrides.items():
        setattr(tenant, f"{name}_override", value)
    after = {name: getattr(tenant, f"{name}_override") for name in LIMIT_NAMES}
    if after == before:  # nothing changes (a form saved again as it was): nothing to record
        return tenant
    tenant.save(update_fields=fields)
    audit_record(
        action="tenant.limits.set",
        actor=actor or "system",
        target=tenant,
        data={"before": before, "after": after},
        chain=PLATFORM,
        request=request,
    )
    tenant_id = tenant.pk
    limits_cache_clear(tenant_id)
    transaction.on_commit(lambda: limits_cache_clear(tenant_id))
    return tenant


def limit_problem(name: str, value: object) -> str | None:
    """Why `value` cannot be limit `name` (of a plan or an override), or None if it can."""
    from apps.tenants.limits import OVERRIDE_MAXIMA

    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= OVERRIDE_MAXIMA[name]:
        return f"{name} must be a whole number from 1 to {OVERRIDE_MAXIMA[name]:,}, not {value!r}."
    return None


@transaction.atomic
def plan_update(
    *,
    actor: object,
    plan: Plan | str,
    requests_per_second: int,
    burst: int,
    concurrent_runs: int,
    monthly_tokens: int | None,
    request: HttpRequest | None = None,
) -> Plan:
    """Change a plan's limits (monthly_tokens None: unlimited), for every tenant on it that has
    no override. Each value is a whole number within the overrides' maxima (OVERRIDE_MAXIMA).
    An audit event `plan.update` on the platform chain records before and after.

    Refused: a ValidationError per field (`plan_unknown`, `limit_invalid`), nothing changed."""
    from apps.audit.models import PLATFORM
    from apps.tenants.limits import LIMIT_NAMES, limits_cache_clear

    values = {
        "requests_per_second": requests_per_second,
        "burst": burst,
        "concurrent_runs": concurrent_runs,
        "monthly_tokens": monthly_tokens,
    }
    errors: dict[str, ValidationError] = {}
    for name, value in values.items():
        if value is None and name == "monthly_tokens":
            continue
        if value is None:
            errors[name] = ValidationError(f"{name} is required.", code="limit_invalid")
        elif message := limit_problem(name, value):
            errors[name] = ValidationError(message, code="limit_invalid")
    name = plan.pk if isinstance(plan, Plan) else plan
    connection.set_schema_to_public()
    row = Plan.objects.select_for_update().filter(pk=name).first() if name in Tenant.Plan.values else None
    if row is None:
        errors["plan"] = ValidationError(f"There is no plan {name!r}.", code="plan_unknown")
    if errors:
        raise ValidationError(errors)
    before = {field: getattr(row, field) for field in LIMIT_NAMES}
    if before == values:  # the form saved again as it was (a double submit): no change to record
        return row
    for field, value in values.items():
        setattr(row, field, value)
    row.save(update_fields=list(values))
    audit_record(
        action="plan.update",
        actor=actor or "system",
        target=row,
        data={"plan": row.pk, "before": before, "after": values},
        chain=PLATFORM,
        request=request,
    )
    # Every tenant on the plan: simplest to forget them all, here and (after commit) again.
    limits_cache_clear()
    transaction.on_commit(limits_cache_clear)
    return row


def tenant_trace_content_set(
    *, tenant: Tenant, allowed: bool, actor: object, request: HttpRequest | None = None
) -> bool:
    """Let the workspace's traces carry its model calls' prompts and completions, or stop them
    (docs/observability.md); on the workspace's own audit chain. Runs started later follow it."""
    if not isinstance(allowed, bool):
        raise ServiceError("trace_content_invalid", "trace_content is true or false.")
    with transaction.atomic():
        row = tenant_row_locked(tenant)
        actor = allowed_now(actor, Permission.SETTINGS_MANAGE)  # as they stand now, not as the request began
        before = row.trace_content
        if before == allowed:
            return allowed
        row.trace_content = allowed
        row.save(update_fields=["trace_content"])  # model history (apps/audit/history.py)
        audit_record(
            action="workspace.trace_content",
            actor=actor,
            target=tenant,
            data={"before": before, "after": allowed},
            request=request,
        )
    return allowed
