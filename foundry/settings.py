"""Agent Foundry settings, read from the environment.

Development defaults are safe: DEBUG is off unless asked for, cookies are host-only, and a
production deployment refuses to start without its own secret key. Every variable is listed in
README.md ("Configuration").
"""

import base64
import binascii
import hashlib
import ipaddress
import math
import os
import re
import sys
import warnings
from pathlib import Path
from urllib.parse import quote, urlsplit

import environ
from celery.schedules import crontab
from csp.constants import NONCE
from django.core.exceptions import ImproperlyConfigured

from foundry.keys import audit_key_pairs, key_pairs
from foundry.metrics_fold import metrics_directory
from foundry.ratelimit import Rate
from foundry.redis_clients import db_and_password, sentinel_settings, sentinels_parse
from foundry.switches import switch

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()


def _switch(name: str, default: bool) -> bool:
    """A yes/no setting (foundry/switches.py): a value that is neither stops the process."""
    try:
        return switch(name, default)
    except ValueError as exc:
        raise ImproperlyConfigured(str(exc)) from None


def _number(name: str, default, kind, minimum):
    try:
        value = kind(name, default=default)
    except ValueError:
        value = None
    if value is None or not math.isfinite(value) or (minimum is not None and value < minimum):
        floor = "" if minimum is None else f", at least {minimum:g}"
        raise ImproperlyConfigured(f"{name} must be a finite number{floor}, not {os.environ.get(name, '')[:40]!r}.")
    return value


def _float(name: str, default: float, *, minimum: float | None = None) -> float:
    """A number setting, refused at start unless it is a finite number (`nan` would pass every
    `<=` bound check, `inf` means never) of at least `minimum`."""
    return _number(name, default, env.float, minimum)


def _int(name: str, default: int, *, minimum: int | None = None) -> int:
    """A whole-number setting, refused at start unless it is one, of at least `minimum`."""
    return _number(name, default, env.int, minimum)


def _list(name: str) -> list[str]:
    """A comma-separated setting: its items stripped (`a, b` is `a` and `b`), empty ones dropped."""
    return [item.strip() for item in env.list(name, default=[]) if item.strip()]


def _choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    """One of `choices` (in any case: `debug` is `DEBUG`), else the process stops naming `name`."""
    value = env.str(name, default=default).strip()
    for choice in choices:
        if value.lower() == choice.lower():
            return choice
    raise ImproperlyConfigured(f"{name} must be one of {', '.join(choices)}, not {value[:40]!r}.")


DEBUG = _switch("FOUNDRY_DEBUG", default=False)

SECRET_KEY = env.str("FOUNDRY_SECRET_KEY", default="")
if not SECRET_KEY.strip():  # blanks (an unfilled template) are a key everyone knows
    if not DEBUG:
        raise ImproperlyConfigured(
            "FOUNDRY_SECRET_KEY is not set. bin/dev generates one for development; "
            "production deployments must provide their own."
        )
    SECRET_KEY = "insecure-development-only-key-do-not-use-in-production"
# Keys SECRET_KEY replaced (comma-separated), still accepted: signed values and sessions made under
# them, and the keyed digests of erased people a restore matches (docs/lifecycle.md).
SECRET_KEY_FALLBACKS = _list("FOUNDRY_SECRET_KEY_FALLBACKS")

# Tenants live at <slug>.<FOUNDRY_BASE_DOMAIN>; the bare base domain is the operator console.
FOUNDRY_BASE_DOMAIN = env.str("FOUNDRY_BASE_DOMAIN", default="localhost").strip().lower().strip(".")
if not re.fullmatch(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*", FOUNDRY_BASE_DOMAIN):
    raise ImproperlyConfigured(
        f"FOUNDRY_BASE_DOMAIN must be a host name (`foundry.example.com`: no scheme, port, path or *), "
        f"not {FOUNDRY_BASE_DOMAIN[:60]!r}."
    )
# Host validation is done by the tenant router (unknown hosts get a 404), but Django's own
# check stays on as a second fence: only the base domain and its subdomains are accepted.
FOUNDRY_EXTRA_ALLOWED_HOSTS = _list("FOUNDRY_EXTRA_ALLOWED_HOSTS")
ALLOWED_HOSTS = [FOUNDRY_BASE_DOMAIN, f".{FOUNDRY_BASE_DOMAIN}", *FOUNDRY_EXTRA_ALLOWED_HOSTS]

# --- Applications -------------------------------------------------------------------------
SHARED_APPS = [
    # Ahead of django_tenants so our create_tenant command (the provisioning service) wins.
    "apps.tenants",
    "django_tenants",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "django_celery_beat",
    "django.contrib.postgres",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "apps.accounts",
    # Model history (apps/audit/history.py): shared and tenant app alike, so each schema keeps
    # the history of its own rows — tenants and operators in public, a tenant's rows in its own.
    "auditlog",
    "apps.audit",
    "apps.console",
    "apps.billing",
]
# Each tenant schema holds its own users and sessions: a user of `acme` does not exist in
# `globex`, and a session created on one host is unknown to every other. The audit trail is
# shared (public schema), one chain per tenant under forced Row-Level Security (apps.audit).
TENANT_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "apps.accounts",
    "auditlog",
    "apps.tokens",
    "apps.catalog",
    "apps.providers",
    "apps.runs",
    "apps.identity",
    "apps.lifecycle",
]
INSTALLED_APPS = SHARED_APPS + [app for app in TENANT_APPS if app not in SHARED_APPS]

TENANT_MODEL = "tenants.Tenant"
TENANT_DOMAIN_MODEL = "tenants.Domain"
# New tenants are copied from this prepared schema (see apps/tenants/schemas.py).
TENANT_BASE_SCHEMA = "_foundry_base"
# "clone" copies TENANT_BASE_SCHEMA; "migrate" runs every migration. bench/ measures both.
FOUNDRY_TENANT_PROVISIONING = env.str("FOUNDRY_TENANT_PROVISIONING", default="clone")
if FOUNDRY_TENANT_PROVISIONING not in {"clone", "migrate"}:
    raise ImproperlyConfigured("FOUNDRY_TENANT_PROVISIONING must be 'clone' or 'migrate'.")
# Issue `SET search_path` only when the schema actually changes on a connection.
TENANT_LIMIT_SET_CALLS = True
# How long one process trusts its copy of a host→tenant route before asking Redis again.
FOUNDRY_TENANT_ROUTE_TTL = _float("FOUNDRY_TENANT_ROUTE_TTL", default=2.0, minimum=0)

MIDDLEWARE = [
    # The client's own address behind a trusted proxy (foundry/proxies.py), for everything after.
    "foundry.proxies.ForwardedForMiddleware",
    # Counts and times every request by route template (foundry/metrics.py).
    "foundry.metrics.RequestMetricsMiddleware",
    "foundry.request_context.RequestIdMiddleware",
    # Logs error responses while the request id, tenant and span are still known (foundry/logs.py).
    "foundry.logs.ErrorResponseLogMiddleware",
    # These three only add headers to the response: outside SecurityMiddleware, so that its own
    # answers (a host refused by the HTTPS redirect) carry them too, as host routing's (unknown
    # host, suspended workspace) and the probes' do.
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Content-Security-Policy on every response (foundry/csp.py).
    "foundry.csp.ContentSecurityPolicyMiddleware",
    # Nothing is cached by browsers or proxies unless a view says so (foundry/caching.py).
    "foundry.caching.NoStoreMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # /healthz and /readyz: answered on any host, before host routing.
    "foundry.health.HealthCheckMiddleware",
    # A request whose charset could turn text into what no column or page takes (before anything reads it).
    "foundry.request_context.RequestCharsetMiddleware",
    # A view's bare 405 (require_POST...) as the platform's error page or JSON (foundry/errors.py).
    "foundry.errors.MethodNotAllowedMiddleware",
    # A console poll refused is told to reload its page rather than poll again (foundry/polls.py).
    "foundry.polls.PollRefusalMiddleware",
    "apps.tenants.middleware.TenantRoutingMiddleware",
    # A rate-limit refusal already standing is answered here, before the rest (foundry/api/access.py).
    "foundry.api.access.ApiRefusalMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "apps.accounts.middleware.SessionTenantBindingMiddleware",
    # django-auditlog's middleware, attributing model history to the request's principal.
    "apps.audit.history.HistoryMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # A console session unused for FOUNDRY_SESSION_IDLE_SECONDS ends (its polls are no use; the
    # sign-in page says why: after the messages).
    "apps.accounts.middleware.SessionIdleMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, so its view check runs after CSRF's: console form posts spend the workspace's rate.
    "apps.console.middleware.ConsoleRateLimitMiddleware",
]

ROOT_URLCONF = "foundry.urls_tenant"
PUBLIC_SCHEMA_URLCONF = "foundry.urls_public"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "apps.console.context_processors.console",
            ],
        },
    },
]

WSGI_APPLICATION = "foundry.wsgi.application"
ASGI_APPLICATION = "foundry.asgi.application"

# --- Data stores --------------------------------------------------------------------------
# Without DATABASE_URL: bin/dev's database, the `foundry` role with its generated password (in
# .data/env) on FOUNDRY_PG_PORT, so a shell that loaded .data/env runs manage.py as bin/dev does.
_DEFAULT_DATABASE_URL = "postgres://foundry:{password}@127.0.0.1:{port}/foundry".format(
    password=quote(env.str("FOUNDRY_DB_PASSWORD", default="foundry"), safe=""),
    port=_int("FOUNDRY_PG_PORT", default=5432, minimum=1),
)


def _database(name: str, default: str) -> dict:
    """A PostgreSQL URL setting as Django's DATABASES entry; anything else stops the process
    naming `name` and never quoting the value (it holds a password)."""
    url = env.str(name, default=default).strip()
    try:
        scheme = urlsplit(url).scheme
        with warnings.catch_warnings():  # django-environ warns with the whole URL
            warnings.simplefilter("ignore")
            database = environ.Env.db_url_config(url) if scheme in ("postgres", "postgresql", "pgsql", "psql") else {}
    except ValueError:  # a port that is no number, a bracket that does not close...
        database = {}
    if not database.get("NAME") or not database.get("ENGINE", "").endswith("postgresql"):
        raise ImproperlyConfigured(
            f"{name} must be a PostgreSQL URL: postgres://user:password@host:port/database (not shown here)."
        )
    return database


DATABASES = {"default": _database("DATABASE_URL", _DEFAULT_DATABASE_URL)}
DATABASES["default"]["ENGINE"] = "foundry.db"
# Persistent connections: the tenant router keeps track of each connection's search_path.
DATABASES["default"]["CONN_MAX_AGE"] = _int("FOUNDRY_DB_CONN_MAX_AGE", default=60, minimum=0)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = 5
# Parameters bound by the server, and a statement run 5 times on a connection prepared there
# (psycopg's prepare_threshold): parsed and planned once, not on every call. A prepared statement
# follows the search path (PostgreSQL analyses it again under another tenant's schema). Needs a
# direct connection or a pooler in session mode, which the tenant router needs already.
DATABASES["default"]["OPTIONS"].update(server_side_binding=True, prepare_threshold=5)
DATABASE_ROUTERS = ["django_tenants.routers.TenantSyncRouter"]
# The role the application connects as (DATABASE_URL's), and the role that owns the public
# schema's tables, which migrations connect as (same host, port and database): the app role may
# then use those tables' rows but never alter, unguard or truncate them (foundry/db/roles.py).
# Without an owner role the app role owns everything.
FOUNDRY_DB_APP_ROLE = DATABASES["default"]["USER"]
FOUNDRY_DB_OWNER_USER = env.str("FOUNDRY_DB_OWNER_USER", default="")
FOUNDRY_DB_OWNER_PASSWORD = env.str("FOUNDRY_DB_OWNER_PASSWORD", default="")

REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")
CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": env.str("FOUNDRY_CACHE_URL", default="redis://127.0.0.1:6379/1"),
        # Every key carries the schema of the tenant it was written for (cache_page included).
        "KEY_FUNCTION": "django_tenants.cache.make_key",
        "REVERSE_KEY_FUNCTION": "django_tenants.cache.reverse_key",
        # JSON, never pickles: a value written into that Redis is data, not code (foundry/cache_values.py).
        # The pool's connections count the replies they are owed (foundry/redis_clients.py).
        "OPTIONS": {
            "SOCKET_CONNECT_TIMEOUT": 2,
            "SOCKET_TIMEOUT": 2,
            "SERIALIZER": "foundry.cache_values.JsonValues",
            "CONNECTION_POOL_CLASS": "foundry.redis_clients.ConnectionPool",
        },
    }
}
# Rate-limit counters (foundry/ratelimit.py, apps/tenants/limits.py); empty: the cache's Redis.
FOUNDRY_RATELIMIT_REDIS_URL = env.str("FOUNDRY_RATELIMIT_REDIS_URL", default="")
# When that Redis is unreachable: reads fall back to a bounded per-process limiter, writes are refused.
FOUNDRY_RATELIMIT_ON_REDIS_ERROR_READS = env.str("FOUNDRY_RATELIMIT_ON_REDIS_ERROR_READS", default="open_local")
FOUNDRY_RATELIMIT_ON_REDIS_ERROR_WRITES = env.str("FOUNDRY_RATELIMIT_ON_REDIS_ERROR_WRITES", default="closed")
# Sign-in attempts are counted per process meanwhile, so credential stuffing stays throttled.
FOUNDRY_RATELIMIT_ON_REDIS_ERROR_LOGINS = env.str("FOUNDRY_RATELIMIT_ON_REDIS_ERROR_LOGINS", default="open_local")
for _name in (
    "FOUNDRY_RATELIMIT_ON_REDIS_ERROR_READS",
    "FOUNDRY_RATELIMIT_ON_REDIS_ERROR_WRITES",
    "FOUNDRY_RATELIMIT_ON_REDIS_ERROR_LOGINS",
):
    if globals()[_name] not in {"closed", "open_local"}:
        raise ImproperlyConfigured(f"{_name} must be 'closed' or 'open_local'.")
# Run admission (apps/runs/admission.py): "closed", a run waits queued for Redis; "open", it runs unlimited.
FOUNDRY_RATELIMIT_ON_REDIS_ERROR_RUNS = env.str("FOUNDRY_RATELIMIT_ON_REDIS_ERROR_RUNS", default="closed")
if FOUNDRY_RATELIMIT_ON_REDIS_ERROR_RUNS not in {"closed", "open"}:
    raise ImproperlyConfigured("FOUNDRY_RATELIMIT_ON_REDIS_ERROR_RUNS must be 'closed' or 'open'.")
# Multiplies the plans' requests/s and burst (never operators' overrides): load tests, test suites.
FOUNDRY_RATELIMIT_PLAN_SCALE = _float("FOUNDRY_RATELIMIT_PLAN_SCALE", default=1.0)
if not 0 < FOUNDRY_RATELIMIT_PLAN_SCALE <= 10_000:
    raise ImproperlyConfigured("FOUNDRY_RATELIMIT_PLAN_SCALE must be above 0 and at most 10000.")

# An API write sent with an `Idempotency-Key` header (apps/tokens/idempotency.py): its answer is
# replayed to retries for this many hours; a retry arriving while the first is still being answered
# waits this many seconds for it, then gets 409 `idempotency_key_in_use`.
FOUNDRY_IDEMPOTENCY_HOURS = _float("FOUNDRY_IDEMPOTENCY_HOURS", default=24.0, minimum=1)
FOUNDRY_IDEMPOTENCY_WAIT_SECONDS = _float("FOUNDRY_IDEMPOTENCY_WAIT_SECONDS", default=5.0, minimum=0)

# /metrics (Prometheus, platform host only) answers requests bearing this token; empty: no /metrics.
FOUNDRY_METRICS_TOKEN = env.str("FOUNDRY_METRICS_TOKEN", default="")
# Where processes' counter files are (foundry/metrics.py); empty: each process serves its own.
# Each host (container) writes in a directory of its own, so process ids of two never meet.
# prometheus_client reads PROMETHEUS_MULTIPROC_DIR once, when first imported: here, before it is
# (nothing this module imports imports it); should something have loaded it earlier, its choice
# of where values live is made again, before any metric exists (foundry/metrics.py).
FOUNDRY_METRICS_DIR = env.str("FOUNDRY_METRICS_DIR", default="")
if FOUNDRY_METRICS_DIR:
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", metrics_directory(FOUNDRY_METRICS_DIR))
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)
    if (values := sys.modules.get("prometheus_client.values")) is not None:
        values.ValueClass = values.get_value_class()

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth and sessions --------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "apps.accounts.backends.PasswordBackend",  # passwords, unless the workspace requires SSO
    "apps.identity.oidc.TenantOIDCBackend",  # the workspace's own OpenID provider (no global OIDC settings)
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "/"
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "apps.accounts.validators.TextPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Host-only cookies: a cookie set by acme.localhost is never sent to globex.localhost.
SESSION_COOKIE_DOMAIN = None
SESSION_ENGINE = "apps.accounts.sessions"  # the database store, refusing keys Django never makes
# Messages wait in the session, never in a cookie of their own: one may carry a link that sets an
# owner's password (an import's invitations), which proxies and WAFs logging cookies would keep.
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"
CSRF_COOKIE_DOMAIN = None
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = _int("FOUNDRY_SESSION_AGE", default=8 * 3600, minimum=60)
# A console session unused this long ends (apps/accounts/middleware.py SessionIdleMiddleware); 0: never.
FOUNDRY_SESSION_IDLE_SECONDS = _int("FOUNDRY_SESSION_IDLE_SECONDS", default=30 * 60, minimum=0)
# Secure by default where the platform says it is served over TLS (it redirects to https, or a
# TLS proxy fronts it): a session cookie never goes over plain http there unless told to.
SECURE_COOKIES = _switch(
    "FOUNDRY_SECURE_COOKIES",
    default=_switch("FOUNDRY_SSL_REDIRECT", default=False) or _switch("FOUNDRY_BEHIND_TLS_PROXY", default=False),
)
SESSION_COOKIE_SECURE = SECURE_COOKIES
CSRF_COOKIE_SECURE = SECURE_COOKIES
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
CSRF_FAILURE_VIEW = "foundry.errors.csrf_failure"
# Where a page may load anything from (foundry/csp.py): its own origin's files, nothing inline.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'none'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", NONCE],  # a nonce only where a page asked for one: the error page
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "manifest-src": ["'self'"],
        "form-action": ["'self'"],
        "base-uri": ["'none'"],
        "object-src": ["'none'"],
        "frame-ancestors": ["'none'"],
    }
}
if _switch("FOUNDRY_BEHIND_TLS_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# The proxies in front of the web process (CIDRs): from a peer in them, the client's address is
# taken from X-Forwarded-For (foundry/proxies.py) — for sign-in limits, audit, logs. Empty: the
# peer is the client, and X-Forwarded-For is ignored (a client could write anything in it).
try:
    FOUNDRY_TRUSTED_PROXIES = [
        ipaddress.ip_network(n.strip(), strict=False)
        for n in env.list("FOUNDRY_TRUSTED_PROXIES", default=[])
        if n.strip()
    ]
except ValueError as exc:
    raise ImproperlyConfigured(f"FOUNDRY_TRUSTED_PROXIES: {exc}") from None
# Production behind TLS: FOUNDRY_SECURE_COOKIES=1, FOUNDRY_SSL_REDIRECT=1, FOUNDRY_HSTS_SECONDS=31536000.
SECURE_SSL_REDIRECT = _switch("FOUNDRY_SSL_REDIRECT", default=False)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SECURE_HSTS_SECONDS = _int("FOUNDRY_HSTS_SECONDS", default=0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0

# Sign-in throttling (apps/tenants/limits.py `login_admit`, GCRA in Redis), each per workspace:
# attempts on one account name from one client address, from one address, and in all.
FOUNDRY_LOGIN_RATE_PER_ACCOUNT = env.str("FOUNDRY_LOGIN_RATE_PER_ACCOUNT", default="5/m")
FOUNDRY_LOGIN_RATE_PER_IP = env.str("FOUNDRY_LOGIN_RATE_PER_IP", default="30/m")
FOUNDRY_LOGIN_RATE_PER_TENANT = env.str("FOUNDRY_LOGIN_RATE_PER_TENANT", default="300/m")
for _name in ("FOUNDRY_LOGIN_RATE_PER_ACCOUNT", "FOUNDRY_LOGIN_RATE_PER_IP", "FOUNDRY_LOGIN_RATE_PER_TENANT"):
    try:
        Rate.parse(globals()[_name])
    except ValueError as error:
        raise ImproperlyConfigured(f"{_name}: {error}.") from None


# --- Provider credentials (apps.providers, docs/providers.md) ------------------------------
def _fernet_keys(values: list[str]) -> list[str]:
    """Fernet keys (URL-safe base64 of 32 bytes); padding may be left off, as bin/dev writes them."""
    keys = []
    for number, value in enumerate(v.strip() for v in values if v.strip()):
        key = value + "=" * (-len(value) % 4)
        try:
            valid = len(base64.urlsafe_b64decode(key.encode("ascii"))) == 32
        except (binascii.Error, UnicodeEncodeError, ValueError):
            valid = False
        if not valid:
            raise ImproperlyConfigured(
                f"FOUNDRY_ENCRYPTION_KEYS: key {number + 1} is not a Fernet key (URL-safe base64 of 32 bytes)."
            )
        keys.append(key)
    return keys


# Comma-separated: the first key encrypts, every key decrypts. Rotation: put a new key first,
# run `manage.py rotate_encryption_keys`, then remove the old one.
FOUNDRY_ENCRYPTION_KEYS = _fernet_keys(env.list("FOUNDRY_ENCRYPTION_KEYS", default=[]))
if not FOUNDRY_ENCRYPTION_KEYS and DEBUG:
    # Development only (like the secret key above): derived, so credentials survive restarts.
    _derived = hashlib.sha256(b"foundry-encryption-keys:" + SECRET_KEY.encode()).digest()
    FOUNDRY_ENCRYPTION_KEYS = [base64.urlsafe_b64encode(_derived).decode()]
# Provider base URLs reach public addresses only, unless listed here (CIDRs, e.g. a self-hosted
# vLLM or Ollama at 10.0.0.0/8). Link-local cloud metadata stays refused unless listed.
try:
    FOUNDRY_PROVIDER_ALLOWED_NETWORKS = [
        ipaddress.ip_network(n.strip(), strict=False)
        for n in env.list("FOUNDRY_PROVIDER_ALLOWED_NETWORKS", default=[])
        if n.strip()
    ]
except ValueError as exc:
    raise ImproperlyConfigured(f"FOUNDRY_PROVIDER_ALLOWED_NETWORKS: {exc}") from None
FOUNDRY_PROVIDER_TIMEOUT_SECONDS = _float("FOUNDRY_PROVIDER_TIMEOUT_SECONDS", default=120.0)
FOUNDRY_PROVIDER_MAX_RETRIES = _int("FOUNDRY_PROVIDER_MAX_RETRIES", default=2)
if FOUNDRY_PROVIDER_TIMEOUT_SECONDS <= 0 or not 0 <= FOUNDRY_PROVIDER_MAX_RETRIES <= 10:
    raise ImproperlyConfigured("FOUNDRY_PROVIDER_TIMEOUT_SECONDS must be > 0 and FOUNDRY_PROVIDER_MAX_RETRIES 0-10.")

# --- Audit trail (apps.audit, docs/audit.md) --------------------------------------------------
# `key_id:<URL-safe base64 of an Ed25519 seed>`, comma-separated; the first signs checkpoints,
# all verify. Retired keys' public halves: FOUNDRY_AUDIT_PUBLIC_KEYS (`key_id:<base64>`).
FOUNDRY_AUDIT_SIGNING_KEYS = env.list("FOUNDRY_AUDIT_SIGNING_KEYS", default=[])
FOUNDRY_AUDIT_PUBLIC_KEYS = env.list("FOUNDRY_AUDIT_PUBLIC_KEYS", default=[])
# Checked now (foundry/keys.py): a mistyped key would otherwise leave every chain head unsigned.
audit_key_pairs(FOUNDRY_AUDIT_SIGNING_KEYS, FOUNDRY_AUDIT_PUBLIC_KEYS)

# Service tokens (apps/identity/service_tokens.py): Ed25519 seeds `key_id:<base64>`, the first
# signs; every one is published at /.well-known/jwks.json. The issuer names this platform.
FOUNDRY_SERVICE_SIGNING_KEYS = env.list("FOUNDRY_SERVICE_SIGNING_KEYS", default=[])
key_pairs("FOUNDRY_SERVICE_SIGNING_KEYS", FOUNDRY_SERVICE_SIGNING_KEYS)
FOUNDRY_SERVICE_TOKEN_ISSUER = env.str("FOUNDRY_SERVICE_TOKEN_ISSUER", default=f"https://{FOUNDRY_BASE_DOMAIN}")

# Origins (scheme://host[:port]) besides a workspace's own that may call its /mcp endpoint
# from a browser. Everything else with an Origin header is refused (foundry/mcp/gateway.py).
FOUNDRY_MCP_ALLOWED_ORIGINS = _list("FOUNDRY_MCP_ALLOWED_ORIGINS")
# Signed checkpoints are also appended here (one JSON-lines file per chain), to be kept outside
# the database: only they reveal a truncated tail. Empty: kept in the database only.
FOUNDRY_AUDIT_CHECKPOINT_DIR = env.str("FOUNDRY_AUDIT_CHECKPOINT_DIR", default="")
# Seconds between signings of each chain's head (the beat job).
FOUNDRY_AUDIT_SIGN_INTERVAL = _float("FOUNDRY_AUDIT_SIGN_INTERVAL", default=300.0, minimum=1)
# SIEM delivery (apps/audit/delivery.py, docs/audit-siem.md): how many delivery runs may hold a
# worker process at once, per workspace and across the platform (keep the latter below the
# workers' concurrency, so runs always find one), and the Celery queue they are sent to (a queue
# of their own, with workers of its own, takes them off the run workers altogether).
FOUNDRY_AUDIT_DELIVERIES_PER_WORKSPACE = _int("FOUNDRY_AUDIT_DELIVERIES_PER_WORKSPACE", default=1, minimum=1)
FOUNDRY_AUDIT_DELIVERIES_MAX = _int("FOUNDRY_AUDIT_DELIVERIES_MAX", default=1, minimum=1)
FOUNDRY_AUDIT_DELIVERY_QUEUE = env.str("FOUNDRY_AUDIT_DELIVERY_QUEUE", default="celery")
# Model history (django-auditlog; models registered in apps/audit/history.py): the correlation
# id of an entry is the request id, changes keep their JSON types, fixtures loads are not history.
AUDITLOG_CID_GETTER = "foundry.request_context.current_request_id"
AUDITLOG_STORE_JSON_CHANGES = True
AUDITLOG_DISABLE_ON_RAW_SAVE = True

# --- Agent runs (apps.runs, docs/runs.md) --------------------------------------------------
# The Celery queue runs are sent to ("celery" is the default queue every worker consumes).
FOUNDRY_RUNS_QUEUE = env.str("FOUNDRY_RUNS_QUEUE", default="celery")
# A run's lock lives this long unless its worker renews it (every third of it): a worker that
# dies frees its runs within this time.
FOUNDRY_RUN_LOCK_SECONDS = _float("FOUNDRY_RUN_LOCK_SECONDS", default=60.0)
# A run whose workers keep dying (say, it exhausts memory) fails after this many take-overs.
FOUNDRY_RUN_MAX_RECOVERIES = _int("FOUNDRY_RUN_MAX_RECOVERIES", default=5)
# Sub-agents calling sub-agents: how deep a run may nest.
FOUNDRY_SUBAGENT_MAX_DEPTH = _int("FOUNDRY_SUBAGENT_MAX_DEPTH", default=3)
if FOUNDRY_RUN_LOCK_SECONDS < 1 or FOUNDRY_RUN_MAX_RECOVERIES < 0 or FOUNDRY_SUBAGENT_MAX_DEPTH < 1:
    raise ImproperlyConfigured(
        "FOUNDRY_RUN_LOCK_SECONDS must be >= 1, FOUNDRY_RUN_MAX_RECOVERIES >= 0, FOUNDRY_SUBAGENT_MAX_DEPTH >= 1."
    )
# Run admission (apps/runs/admission.py): a run executing holds one of its workspace's slots, a
# lease that lives this long unless renewed (every third of it), so a dead worker's slot comes
# back within it; a run that finds no free slot stays queued and is tried again after about this.
FOUNDRY_RUN_SLOT_SECONDS = _float("FOUNDRY_RUN_SLOT_SECONDS", default=60.0)
FOUNDRY_RUN_SLOT_RETRY_SECONDS = _float("FOUNDRY_RUN_SLOT_RETRY_SECONDS", default=5.0)
if not 0.1 <= FOUNDRY_RUN_SLOT_SECONDS <= 3600 or not 0.1 <= FOUNDRY_RUN_SLOT_RETRY_SECONDS <= 600:
    raise ImproperlyConfigured(
        "FOUNDRY_RUN_SLOT_SECONDS must be from 0.1 to 3600, FOUNDRY_RUN_SLOT_RETRY_SECONDS from 0.1 to 600."
    )
# A worker stalled past its slot's lease but not its run's lock would go on running while another
# run took the slot: the lock must lapse no later than the slot (a stalled run stops at its next step).
if FOUNDRY_RUN_SLOT_SECONDS < FOUNDRY_RUN_LOCK_SECONDS:
    raise ImproperlyConfigured(
        f"FOUNDRY_RUN_SLOT_SECONDS ({FOUNDRY_RUN_SLOT_SECONDS:g}) must be at least FOUNDRY_RUN_LOCK_SECONDS"
        f" ({FOUNDRY_RUN_LOCK_SECONDS:g}): a worker stalled between the two would run past its workspace's"
        " concurrent runs."
    )
# Networks `http` tools may reach although private or loopback (CIDRs; operators only, e.g.
# an internal API at 10.1.0.0/16). Link-local cloud metadata stays refused unless listed.
try:
    FOUNDRY_HTTP_TOOL_ALLOWED_NETWORKS = [
        ipaddress.ip_network(n.strip(), strict=False)
        for n in env.list("FOUNDRY_HTTP_TOOL_ALLOWED_NETWORKS", default=[])
        if n.strip()
    ]
except ValueError as exc:
    raise ImproperlyConfigured(f"FOUNDRY_HTTP_TOOL_ALLOWED_NETWORKS: {exc}") from None
# Where checkpoints are written (default: DATABASE_URL). Behind a transaction pooler, point
# this at a pool that keeps the startup search_path (docs/runs.md, "Connections").
FOUNDRY_CHECKPOINT_DATABASE_URL = env.str("FOUNDRY_CHECKPOINT_DATABASE_URL", default="")
# Days between scheduling a workspace's deletion and its purge (apps/lifecycle/deletion.py).
FOUNDRY_TENANT_DELETION_GRACE_DAYS = _float("FOUNDRY_TENANT_DELETION_GRACE_DAYS", default=30.0)
if not 0 <= FOUNDRY_TENANT_DELETION_GRACE_DAYS <= 365:  # apps/lifecycle/deletion.py MAX_GRACE_DAYS
    raise ImproperlyConfigured("FOUNDRY_TENANT_DELETION_GRACE_DAYS must be 0 to 365 days.")
# The Redis broker hands an unacknowledged task to another worker after this many seconds
# (a run task is acknowledged when it ends). Runs are locked, so a long run redelivered while
# its worker lives is not run twice; a lower value recovers runs of a lost worker sooner.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": _int("FOUNDRY_CELERY_VISIBILITY_TIMEOUT", default=3600, minimum=1),
    # Seconds between a worker's sweeps for such tasks.
    "unacked_restore_interval": _int("FOUNDRY_CELERY_RESTORE_INTERVAL", default=10, minimum=1),
    "unacked_restore_throttle": 1,
    # A broker that accepts and never answers (frozen, or a proxy before a dead one) fails a
    # request's enqueue in seconds (the sweep takes the run up), not never; above BRPOP's 1 s.
    "socket_timeout": 3,
    "socket_connect_timeout": 3,
}

# --- Backups (apps/lifecycle/backup.py, docs/operations/disaster-recovery.md) -------------
# Where `manage.py backup` and the daily beat job write, and how many of each scope (the whole
# database, each workspace) are kept; 0 keeps all.
FOUNDRY_BACKUP_DIR = env.str("FOUNDRY_BACKUP_DIR", default=str(BASE_DIR / ".data" / "backups"))
FOUNDRY_BACKUP_KEEP = _int("FOUNDRY_BACKUP_KEEP", default=7)
# A pg_dump or pg_restore running longer is stopped, and the backup or restore fails.
FOUNDRY_BACKUP_TIMEOUT_SECONDS = _float("FOUNDRY_BACKUP_TIMEOUT_SECONDS", default=6 * 3600.0)
if not 0 < FOUNDRY_BACKUP_TIMEOUT_SECONDS <= 7 * 86400:
    raise ImproperlyConfigured("FOUNDRY_BACKUP_TIMEOUT_SECONDS must be above 0 and at most a week.")
if FOUNDRY_BACKUP_KEEP < 0:
    raise ImproperlyConfigured("FOUNDRY_BACKUP_KEEP must be 0 (keep all) or more.")
# A role that bypasses Row-Level Security, for pg_dump of the whole database (the application's
# role sees no audit or usage rows outside a tenant's scope); empty: DATABASE_URL's role.
FOUNDRY_BACKUP_DATABASE_URL = env.str("FOUNDRY_BACKUP_DATABASE_URL", default="")

# --- Static files -------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
# The default storage's directory (workspace export archives): shared by web and worker processes.
MEDIA_ROOT = env.str("FOUNDRY_MEDIA_ROOT", default=str(BASE_DIR / ".data" / "media"))
# Exports hold a whole workspace: readable by the platform's own user only.
FILE_UPLOAD_PERMISSIONS = 0o600
FILE_UPLOAD_DIRECTORY_PERMISSIONS = 0o700
# A finished export's download link works this long (docs/export-jobs.md).
FOUNDRY_EXPORT_LINK_SECONDS = _int("FOUNDRY_EXPORT_LINK_SECONDS", default=24 * 3600)
# The largest archive the operator console imports (in the request); larger: manage.py import_tenant.
FOUNDRY_IMPORT_MAX_BYTES = _int("FOUNDRY_IMPORT_MAX_BYTES", default=256 * 1024 * 1024)
if FOUNDRY_EXPORT_LINK_SECONDS < 60 or FOUNDRY_IMPORT_MAX_BYTES < 1024:
    raise ImproperlyConfigured("FOUNDRY_EXPORT_LINK_SECONDS must be >= 60 and FOUNDRY_IMPORT_MAX_BYTES >= 1024.")

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Celery -------------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=REDIS_URL)
# Redis through Sentinel (foundry/redis_clients.py, docs/operations/scaling.md): "host:port,...".
# The Redis URLs then name the database and password; the server is the service's master.
try:
    FOUNDRY_REDIS_SENTINELS = sentinels_parse(env.str("FOUNDRY_REDIS_SENTINELS", default=""))
except ValueError as exc:
    raise ImproperlyConfigured(f"FOUNDRY_REDIS_SENTINELS: {exc}.") from None
FOUNDRY_REDIS_SENTINEL_MASTER = env.str("FOUNDRY_REDIS_SENTINEL_MASTER", default="foundry")
FOUNDRY_REDIS_SENTINEL_PASSWORD = env.str("FOUNDRY_REDIS_SENTINEL_PASSWORD", default="")
# Lowercase: django-redis reads the name back from a URL's host, which lowercases it.
if not re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,63}", FOUNDRY_REDIS_SENTINEL_MASTER):
    raise ImproperlyConfigured("FOUNDRY_REDIS_SENTINEL_MASTER: lowercase letters, digits, '.', '_' and '-'.")
if FOUNDRY_REDIS_SENTINELS:
    try:
        _sentinel = sentinel_settings(
            sentinels=FOUNDRY_REDIS_SENTINELS,
            master=FOUNDRY_REDIS_SENTINEL_MASTER,
            password=FOUNDRY_REDIS_SENTINEL_PASSWORD,
            cache=CACHES["default"],
            broker_url=CELERY_BROKER_URL,
            result_url=CELERY_RESULT_BACKEND,
        )
        for _url in filter(None, (REDIS_URL, FOUNDRY_RATELIMIT_REDIS_URL)):  # the platform's own clients'
            db_and_password(_url)
    except ValueError as exc:
        raise ImproperlyConfigured(f"FOUNDRY_REDIS_SENTINELS: {exc}.") from None
    CACHES["default"] = _sentinel["cache"]
    CELERY_BROKER_URL, CELERY_RESULT_BACKEND = _sentinel["broker_url"], _sentinel["result_url"]
    CELERY_BROKER_TRANSPORT_OPTIONS |= _sentinel["transport"]
    CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = _sentinel["transport"]
    # Celery reads these variables before its settings: they must say the same.
    os.environ["CELERY_BROKER_URL"], os.environ["CELERY_RESULT_BACKEND"] = CELERY_BROKER_URL, CELERY_RESULT_BACKEND
# kombu's Redis transport, but an item of the broker that is no message is dropped rather than
# stopping the worker (foundry/broker.py); another broker is read as its URL says.
if CELERY_BROKER_URL.split("://", 1)[0] in ("redis", "rediss", "sentinel"):
    CELERY_BROKER_TRANSPORT = (
        "foundry.broker:GuardedSentinelTransport" if FOUNDRY_REDIS_SENTINELS else "foundry.broker:GuardedTransport"
    )
# Message signing (celery.security; docs/operations/deployment.md, "Celery message signing"):
# every process signs the task and control messages it sends with the platform key, and a worker
# refuses any message no certificate in the store verifies. The store (a certificate file, a
# directory of them or a glob) trusts an old and a new certificate side by side during a rotation.
FOUNDRY_CELERY_SIGNING_KEY = env.str("FOUNDRY_CELERY_SIGNING_KEY", default="")
FOUNDRY_CELERY_SIGNING_CERT = env.str("FOUNDRY_CELERY_SIGNING_CERT", default="")
FOUNDRY_CELERY_CERT_STORE = env.str("FOUNDRY_CELERY_CERT_STORE", default="") or FOUNDRY_CELERY_SIGNING_CERT
FOUNDRY_CELERY_SIGNING = bool(FOUNDRY_CELERY_SIGNING_KEY or FOUNDRY_CELERY_SIGNING_CERT)
CELERY_SECURITY_KEY = FOUNDRY_CELERY_SIGNING_KEY
CELERY_SECURITY_CERTIFICATE = FOUNDRY_CELERY_SIGNING_CERT
CELERY_SECURITY_CERT_STORE = FOUNDRY_CELERY_CERT_STORE
CELERY_SECURITY_DIGEST = "sha256"
# Unsigned JSON only in development without a key. Production without one sends and accepts
# nothing: foundry/celery.py refuses to configure Celery, and `manage.py check` says why.
_celery_unsigned = DEBUG and not FOUNDRY_CELERY_SIGNING
CELERY_TASK_SERIALIZER = "json" if _celery_unsigned else "auth"
CELERY_ACCEPT_CONTENT = ["json"] if _celery_unsigned else ["auth"]
# Results are not signed (no production code reads one). The backend falls back to
# CELERY_ACCEPT_CONTENT, so it must be told that results are JSON.
CELERY_RESULT_SERIALIZER = "json"
# Every task ignores its result (each would be kept a day in the broker's Redis); a failure is
# still stored, for whoever holds its id (an operator, a test) to read.
CELERY_TASK_STORE_ERRORS_EVEN_IF_IGNORED = True
CELERY_RESULT_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Celery's Django fixup closes every database connection before and after each task unless told
# to keep them for this many tasks: each run's task opened a new PostgreSQL session (a backend
# started, authenticated, its catalog caches cold, its prepared statements gone). Never by count
# here: a task boundary closes a connection as a request's end does, by CONN_MAX_AGE, a failed
# health check or an unfinished transaction (foundry/celery.py, `_connections_aged`).
CELERY_DB_REUSE_MAX = 10**12
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_ALWAYS_EAGER = False
# Workers log through LOGGING's handler (JSON with trace, tenant and request; foundry/logs.py)
# rather than Celery's own, and write a heartbeat readiness counts (foundry/heartbeat.py).
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_IMPORTS = ["foundry.heartbeat"]
# A worker's heartbeat expires after this many seconds (renewed every third of it).
FOUNDRY_WORKER_HEARTBEAT_TTL = _float("FOUNDRY_WORKER_HEARTBEAT_TTL", default=30.0)
if FOUNDRY_WORKER_HEARTBEAT_TTL < 1:
    raise ImproperlyConfigured("FOUNDRY_WORKER_HEARTBEAT_TTL must be at least 1 (seconds).")
# /readyz answers 503 when no worker heartbeats (false: it reports the workers down, still 200).
FOUNDRY_READY_REQUIRES_WORKER = _switch("FOUNDRY_READY_REQUIRES_WORKER", default=True)
# /readyz reuses one process's answer for this many seconds (probes arriving while a check runs
# wait up to a second for it): each check opens a PostgreSQL connection, and the endpoint is public.
FOUNDRY_READY_CACHE_SECONDS = _float("FOUNDRY_READY_CACHE_SECONDS", default=1.0, minimum=0)
# The run page links to its trace: this URL with {trace_id} replaced (empty: the id, no link).
# Whether a request's W3C traceparent is continued (a trusted proxy or service in front, which
# sets it); otherwise a request starts a trace of its own, sampled by this platform, linked to
# the caller's: a client's "sampled" flag would force tracing every request it sends.
FOUNDRY_TRACE_TRUST_CALLERS = _switch("FOUNDRY_TRACE_TRUST_CALLERS", default=False)
FOUNDRY_TRACE_URL_TEMPLATE = env.str("FOUNDRY_TRACE_URL_TEMPLATE", default="")
if FOUNDRY_TRACE_URL_TEMPLATE and (
    not FOUNDRY_TRACE_URL_TEMPLATE.startswith(("http://", "https://")) or "{trace_id}" not in FOUNDRY_TRACE_URL_TEMPLATE
):
    raise ImproperlyConfigured("FOUNDRY_TRACE_URL_TEMPLATE must be an http(s) URL containing {trace_id}.")

# --- Logging ------------------------------------------------------------------------------
LOG_LEVEL = _choice("FOUNDRY_LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "WARN", "ERROR", "CRITICAL"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        # One object a line: timestamp (ISO 8601, UTC), level, logger, message, trace_id, span_id,
        # tenant, request_id (null when there is none), and any `extra` the call passed.
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(levelname)s %(name)s %(message)s %(trace_id)s %(span_id)s %(tenant)s %(request_id)s",
            "rename_fields": {"levelname": "level", "name": "logger"},
            "timestamp": True,
        },
        "text": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "filters": {"context": {"()": "foundry.logs.LogContextFilter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": _choice("FOUNDRY_LOG_FORMAT", "json", ("json", "text")),
            "filters": ["context"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "dulwich": {"level": "WARNING"},
        # httpx logs every URL it calls at INFO: a webhook's token, an http tool's arguments;
        # httpx2 (the model SDKs' client) every provider endpoint.
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        "httpx2": {"level": "WARNING"},
        "httpcore2": {"level": "WARNING"},
        # The model SDKs log each request's options at DEBUG: the anthropic SDK its whole body (the
        # prompt, completions, tool results), whatever a workspace's trace_content says.
        "anthropic": {"level": "INFO"},
        "openai": {"level": "INFO"},
        # A Host outside ALLOWED_HOSTS reaching Django's HTTPS redirect (before the host router):
        # Django logs an error and its traceback for each, which scanners send by the thousand
        # (Django's documentation suggests silencing it). The access log has the 400.
        "django.security.DisallowedHost": {"level": "CRITICAL"},
        # uvicorn (the MCP service, `bin/dev up`) installs text handlers of its own before the
        # application loads: its lines (startup, "Exception in ASGI application") go here instead.
        # Not `uvicorn` itself, whose configuring would reset its child `uvicorn.access`: that one
        # `--no-access-log` silences, and its lines carry the query string (tokens, an SSO
        # callback's code), which is never logged.
        "uvicorn.error": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        # And should `--no-access-log` be left out of a command, its handler goes here all the same.
        "uvicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
    },
}

# A pasted 1 MiB document, form-encoded by the browser, can take up to three times that.
DATA_UPLOAD_MAX_MEMORY_SIZE = 4 * 1024 * 1024

# --- REST API -----------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "foundry.api.authentication.ApiTokenAuthentication",
        # Signed-in console users may call the API from the browser (CSRF enforced).
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["foundry.api.permissions.TenantAccess"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["foundry.api.parsers.SafeJSONParser"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "foundry.api.negotiation.Negotiation",
    "EXCEPTION_HANDLER": "foundry.api.errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Agent Foundry API",
    "DESCRIPTION": "Per-workspace REST API. Authenticate with `Authorization: Bearer <token>`.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Three fields are called `kind`: give each its own enum name.
    "ENUM_NAME_OVERRIDES": {
        "DocumentKindEnum": "apps.catalog.models.Kind",
        "SinkKindEnum": "apps.audit.models.AuditSink.Kind",
        "ChainBreakKindEnum": "apps.audit.apis.BREAK_KINDS",
        "RunStatusEnum": "apps.runs.models.Run.Status",
    },
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "foundry.api.schema.add_error_responses",
    ],
}

CELERY_BEAT_SCHEDULE = {
    "tenants-refresh-stats": {"task": "tenants.refresh_all_stats", "schedule": 300.0},
    "runs-sweep": {"task": "runs.sweep", "schedule": 120.0},
    "audit-sign-heads": {"task": "audit.sign_heads", "schedule": FOUNDRY_AUDIT_SIGN_INTERVAL},
    "lifecycle-purge-due": {"task": "lifecycle.purge_due", "schedule": 3600.0},
    "audit-deliver-sinks": {"task": "audit.deliver_sinks", "schedule": 15.0},
    "billing-rollup": {"task": "billing.rollup", "schedule": 3600.0},
    "tokens-expire-idempotency-keys": {"task": "tokens.expire_idempotency_keys", "schedule": 3600.0},
    "lifecycle-backup": {"task": "lifecycle.backup", "schedule": 24 * 3600.0},
    # Nightly (UTC): every active workspace's retention pass (docs/retention.md).
    "lifecycle-retention": {"task": "lifecycle.apply_retention", "schedule": crontab(hour=3, minute=15)},
}
