"""What a tenant may use: its plan's limits with the operator's overrides, and the per-request
rate check the API and MCP share.

`limits_for(tenant)` is the one answer to "what are this tenant's limits", cached per process for
FOUNDRY_TENANT_ROUTE_TTL seconds (changes made in this process are seen at once; other processes
see them within the TTL).

`request_admit` spends one unit of two GCRA buckets (foundry/ratelimit.py): the credential's
(an API token, a member, a service) then the tenant's. A credential gets `CREDENTIAL_SHARE` of the
tenant's rate, so one runaway script cannot take every request the tenant's other clients need.
The API, MCP and console form posts (apps/console/middleware.py) spend it.

`login_admit` counts sign-in attempts (password form, SSO start) in three buckets per workspace,
at the FOUNDRY_LOGIN_RATE_* settings: one account name from one client address, one client
address, and the whole workspace, so credential stuffing is throttled whether it sprays accounts
or addresses, and a flood at one workspace never refuses another's sign-ins. Per address and
account rather than per account alone, so a flood cannot lock a member out from everywhere.
"""

import dataclasses
import functools
import hashlib
import ipaddress
import logging
import math
import re
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import connection

from apps.tenants.models import Tenant
from foundry.ratelimit import MAX_LIMIT, Decision, Limiter, Rate, limit_key, limiter_redis
from foundry.recent import RecentValues

logger = logging.getLogger(__name__)

CREDENTIAL_SHARE = 0.5
# The most an override may be: beyond these a value is a typo, not a deal.
OVERRIDE_MAXIMA = {
    "requests_per_second": 100_000,
    "burst": MAX_LIMIT,
    "concurrent_runs": 10_000,
    "monthly_tokens": 10**13,
}
LIMIT_NAMES = tuple(OVERRIDE_MAXIMA)
# A tenant whose plan has no row (a plan added to Tenant.Plan without its data): the free plan's values.
_PLAN_MISSING = (5, 20, 2, 1_000_000)


@dataclass(frozen=True)
class EffectiveLimits:
    plan: str
    requests_per_second: int
    burst: int
    concurrent_runs: int
    monthly_tokens: int | None  # None: unlimited
    overridden: frozenset[str] = frozenset()

    def tenant_rate(self) -> Rate:
        return Rate(self.requests_per_second, 1.0, self.burst)

    def credential_rate(self) -> Rate:
        """Exactly the credential's share of the workspace's rate — its requests per second over a
        period 1 / CREDENTIAL_SHARE as long (5/s: 5 every 2 s), never a share rounded up to whole
        requests per second (5/s gave 3/s; 1/s, all of it) — and of its burst, rounded down."""
        return Rate(
            self.requests_per_second,
            1.0 / CREDENTIAL_SHARE,
            max(math.floor(self.burst * CREDENTIAL_SHARE), 1),
        )


_SQL = (
    "SELECT t.id, t.plan, p.requests_per_second, p.burst, p.concurrent_runs, p.monthly_tokens,"
    " t.requests_per_second_override, t.burst_override, t.concurrent_runs_override, t.monthly_tokens_override"
    " FROM public.tenants_tenant t LEFT JOIN public.tenants_plan p ON p.name = t.plan WHERE t.id = ANY(%s)"
)

_cache: RecentValues[EffectiveLimits] = RecentValues()


def limits_for(tenant: Tenant | int) -> EffectiveLimits:
    """The tenant's limits: each override where the operator set one, else the plan's value."""
    tenant_id = tenant if isinstance(tenant, int) else tenant.pk
    return _cache.get(tenant_id, lambda: _query(tenant_id))


def limits_cache_clear(tenant_id: int | None = None) -> None:
    _cache.forget(None if tenant_id is None else (lambda key: key == tenant_id))


def limits_for_many(tenant_ids: list[int]) -> dict[int, EffectiveLimits]:
    """limits_for of many tenants in one statement (an operator's list of every workspace)."""
    since = _cache.generation()
    limits = _query_many(list(tenant_ids))
    _cache.keep(limits, since=since)
    return limits


def _query(tenant_id: int) -> EffectiveLimits:
    limits = _query_many([tenant_id]).get(tenant_id)
    if limits is None:
        raise Tenant.DoesNotExist(f"no tenant {tenant_id}")
    return limits


def _query_many(tenant_ids: list[int]) -> dict[int, EffectiveLimits]:
    # Schema-qualified, so it works whatever search_path the connection has right now.
    with connection.cursor() as cursor:
        cursor.execute(_SQL, [tenant_ids])
        return {row[0]: _limits_of(row[0], row[1:]) for row in cursor.fetchall()}


def _limits_of(tenant_id: int, row: tuple) -> EffectiveLimits:
    plan, *plan_values = row[:5]
    overrides = dict(zip(LIMIT_NAMES, row[5:], strict=True))
    if plan_values[0] is None:
        logger.error("tenant %s is on plan %r, which has no row in tenants_plan", tenant_id, plan)
        plan_values = list(_PLAN_MISSING)
    values = dict(zip(LIMIT_NAMES, plan_values, strict=True))
    scale = settings.FOUNDRY_RATELIMIT_PLAN_SCALE
    for name in ("requests_per_second", "burst"):
        values[name] = min(max(math.floor(values[name] * scale), 1), MAX_LIMIT)
    values.update({name: value for name, value in overrides.items() if value is not None})
    overridden = frozenset(name for name, value in overrides.items() if value is not None)
    return EffectiveLimits(plan=plan, overridden=overridden, **values)


# --- the per-request check ----------------------------------------------------------------------


def limiter() -> Limiter:
    """This process's limiter, on FOUNDRY_RATELIMIT_REDIS_URL (default: the cache's Redis)."""
    return _limiter_for(settings.FOUNDRY_RATELIMIT_REDIS_URL or settings.CACHES["default"]["LOCATION"])


@functools.lru_cache(maxsize=4)
def _limiter_for(url: str) -> Limiter:
    return Limiter(limiter_redis(url))


def credential_label(principal) -> str:
    """Who spends a credential's bucket: `token:<prefix>`, `user:<pk>` or `service:<name>`."""
    token = getattr(principal, "token", None)
    if token is not None:
        return f"token:{token.prefix}"
    if getattr(principal, "pk", None) is not None:
        return f"user:{principal.pk}"
    claims = getattr(principal, "claims", None) or {}
    return "".join(c if c.isprintable() and not c.isspace() else "_" for c in str(claims.get("sub", "unknown")))[:120]


def request_admit(*, tenant_id: int, principal, write: bool) -> Decision:
    """Spend one request of the credential's and the tenant's rates together, in one round trip
    (neither is spent when the other refuses). Refused: the refusal with the longer wait (each
    refusal remembered); admitted: the decision with fewer requests left (its headers tell the client)."""
    limits = limits_for(tenant_id)
    on_error = (
        settings.FOUNDRY_RATELIMIT_ON_REDIS_ERROR_WRITES if write else settings.FOUNDRY_RATELIMIT_ON_REDIS_ERROR_READS
    )
    checks = [
        (limit_key("credential", f"{tenant_id}:{credential_label(principal)}"), limits.credential_rate()),
        (limit_key("tenant", str(tenant_id)), limits.tenant_rate()),
    ]
    decisions = limiter().check_many(checks, on_error=on_error)
    refused = [
        (key, decision) for (key, _rate), decision in zip(checks, decisions, strict=True) if not decision.allowed
    ]
    for key, decision in refused:
        _refusal_remember(key, decision)
    if refused:  # the longest wait: retrying sooner would meet the other refusal
        return max((decision for _, decision in refused), key=lambda decision: decision.retry_after)
    for (key, rate), decision in zip(checks, decisions, strict=True):
        if decision.remaining == 0:
            # Left with nothing: it refuses every request until its next unit is back. Not a
            # refusal to answer early by itself (the other bucket may be further out than this
            # process knows), but the wait an early refusal of the other tells is at least this.
            wait = decision.reset_after - rate.interval * (rate.capacity - 1)
            _refusal_remember(key, dataclasses.replace(decision, allowed=False, retry_after=wait), _exhausted)
    return min(decisions, key=lambda decision: decision.remaining)


# --- refusals remembered per process --------------------------------------------------------------
# A GCRA refusal says when the key admits again (`retry_after`), and a refused request does not
# move that moment, so until then every request on the key is refused, in any process. Each
# process remembers the refusals it was told of and refuses such requests at once, before the
# token is looked up and without asking Redis: a flooding client costs its workspace's
# neighbours next to nothing. (An operator raising the limit meanwhile takes effect after it.)

_refusals: dict[str, tuple[float, Decision]] = {}
# Buckets an admission left empty, as refusals until their next unit is back: only ever lengthen
# the wait of an early refusal standing for the other bucket of the request.
_exhausted: dict[str, tuple[float, Decision]] = {}
_API_TOKEN = re.compile(r"^(?i:bearer)\s+af_([0-9a-f]{12})_")


def _refusal_remember(key: str, decision: Decision, memory: dict | None = None) -> None:
    memory = _refusals if memory is None else memory
    if decision.unavailable or decision.retry_after <= 0:
        return
    now = time.monotonic()
    if len(memory) > 10_000:
        for stale in [k for k, (until, _) in list(memory.items()) if until <= now]:
            memory.pop(stale, None)
    memory[key] = (now + decision.retry_after, decision)


def request_refused_early(*, tenant_id: int, authorization: str | None) -> Decision | None:
    """Before authentication: the refusal still standing for this tenant, or for the API token the
    request bears (by its public prefix), with its wait shortened to what is left; else None."""
    if not _refusals:
        return None
    keys = [limit_key("tenant", str(tenant_id))]
    match = _API_TOKEN.match(authorization or "")
    if match:
        keys.insert(0, limit_key("credential", f"{tenant_id}:token:{match.group(1)}"))
    now = time.monotonic()
    standing, empty = [], []
    for key in keys:
        for memory, found in ((_refusals, standing), (_exhausted, empty)):
            remembered = memory.get(key)
            if remembered is None:
                continue
            if remembered[0] <= now:
                memory.pop(key, None)
                continue
            found.append(remembered)
    if not standing:
        return None
    # Both refuse: the headers of the one with the longer wait, as the admission would say (a
    # bucket left empty by this process's last admission refuses too, until its unit is back).
    until, decision = max([*standing, *empty], key=lambda remembered: remembered[0])
    elapsed = decision.retry_after - (until - now)
    return dataclasses.replace(decision, retry_after=until - now, reset_after=max(decision.reset_after - elapsed, 0.0))


def refusals_forget() -> None:
    _refusals.clear()
    _exhausted.clear()


def login_name_key(account: str) -> str:
    """How a sign-in limit key names the account typed: a digest (the name typed may be anything,
    personal, or long); erasing a person finds their buckets by it (apps/lifecycle/erasure.py)."""
    return hashlib.sha256(account.strip().lower().encode(errors="replace")).hexdigest()[:32]


def client_bucket(client: str | None) -> str:
    """What a client address counts as: an IPv6 address its /64 (one client holds a whole /64
    and could pick a new address for each attempt), an IPv4-mapped one the IPv4 address."""
    text = client or "unknown"
    try:
        address = ipaddress.ip_address(text.split("%")[0])
    except ValueError:
        return "".join(c if c.isprintable() and not c.isspace() else "_" for c in text)[:64]
    if address.version == 6:
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def login_admit(*, tenant_id: int | None, client: str, account: str | None) -> Decision:
    """Spend one sign-in attempt of `client` (an address) on `account` (the name typed; None for
    SSO, which names none) in workspace `tenant_id` (None: the operator host), on every bucket or
    none: a member whose attempt the workspace's bucket refuses (a flood from elsewhere) does not
    spend their own. Refused: the refusing decision that waits longest; admitted: the one with
    fewer attempts left. A refusal names the bucket that refused (`refused_by`: account, address,
    workspace)."""
    workspace = str(tenant_id) if tenant_id is not None else "public"
    client = client_bucket(client)
    checks = [
        ("address", limit_key("login-ip", f"{workspace}:{client}"), settings.FOUNDRY_LOGIN_RATE_PER_IP),
        ("workspace", limit_key("login-tenant", workspace), settings.FOUNDRY_LOGIN_RATE_PER_TENANT),
    ]
    if account is not None:
        name = login_name_key(account)
        key = limit_key("login-account", f"{workspace}:{client}:{name}")
        checks.insert(0, ("account", key, settings.FOUNDRY_LOGIN_RATE_PER_ACCOUNT))
    decisions = limiter().check_many(
        [(key, Rate.parse(rate)) for _, key, rate in checks], on_error=settings.FOUNDRY_RATELIMIT_ON_REDIS_ERROR_LOGINS
    )
    refused = [(decision, by) for decision, (by, _, _) in zip(decisions, checks, strict=True) if not decision.allowed]
    if refused:
        decision, by = max(refused, key=lambda pair: pair[0].retry_after)
        return dataclasses.replace(decision, refused_by=by)
    return min(decisions, key=lambda decision: decision.remaining)


def refusal_response(request, decision: Decision, *, surface: str, code: str, too_many: str, unavailable: str):
    """The page (or JSON, as the request asks) for a refused console post or sign-in: 503 when the
    limiter could not be asked and counts closed, else 429 saying how long to wait; counted."""
    from foundry.errors import error_response
    from foundry.metrics import rate_limited

    if decision.unavailable:
        return error_response(
            request, status=503, code="rate_limiter_unavailable", message=unavailable, headers=decision.headers()
        )
    rate_limited(getattr(getattr(request, "tenant", None), "schema_name", "public"), surface)
    wait = decision.headers()["Retry-After"]
    message = f"{too_many} Wait {wait} second{'s' * (wait != '1')} and try again."
    return error_response(request, status=429, code=code, message=message, headers=decision.headers())
