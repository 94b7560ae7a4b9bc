"""Shared fixtures: a test database with two tenants and a cast of named people.

acme has one member per role; globex has its own owner; the public schema has one platform
operator. They are created once per test session (committed), and every test runs inside a
transaction that is rolled back — schema DDL included — so tests may provision freely.

Tests connect as the app role, as the platform does (foundry/db/roles.py): the database is created
and migrated as the owner role. So no `transaction=True` tests: their flush TRUNCATEs every table,
which only the owner may; a test that must commit uses `django_db_blocker.unblock()` and cleans up.
"""

import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
import warnings
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.core.cache import cache
from django.db import connection
from django.db.models import Max
from django.test import Client
from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.accounts.permissions import Role
from apps.tenants.models import Tenant
from apps.tenants.routing import route_cache_clear
from apps.tenants.schemas import base_schema_prepare, clone_function_install
from apps.tenants.services import tenant_provision
from foundry.db.roles import app_role, app_role_grant, as_owner, definer_functions_restrict

# oidc_provider_factory: a real OpenID provider on loopback (tests/idp), for SSO and bearer tests.
pytest_plugins = ["tests.oidc_provider"]

PASSWORD = "correct-horse-battery-staple"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def django_db_setup(request, django_test_environment, django_db_modify_db_settings, django_db_blocker):
    """Create the test database, always (pytest-django would skip it when the selected tests
    only reach the database through a live server), then the base schema and the cast."""
    from django.test.utils import setup_databases, teardown_databases

    with django_db_blocker.unblock():
        with as_owner():  # as migrate_platform: the owner role creates and migrates public, the app role the rest
            db_cfg = setup_databases(verbosity=0, interactive=False, aliases={"default"}, serialized_aliases=set())
            assert connection.settings_dict["NAME"].startswith("test_"), "refusing to seed a non-test database"
            # A throwaway database: its commits need not wait for the disk to flush (every
            # process the tests start connects to it and inherits this): a commit-heavy subset
            # runs ~5% faster. Nothing here need outlive a crash of the server.
            with connection.cursor() as cursor:
                cursor.execute(
                    f"ALTER DATABASE {connection.ops.quote_name(connection.settings_dict['NAME'])} "
                    "SET synchronous_commit = off"
                )
            connection.close()  # the next connection has it
            app_role_grant()
            definer_functions_restrict()
            clone_function_install()
        base_schema_prepare()
        acme = tenant_provision(
            slug="acme",
            name="Acme Corporation",
            plan=Tenant.Plan.ENTERPRISE,
            owner_email="owner@acme.test",
            owner_password=PASSWORD,
        ).tenant
        tenant_provision(
            slug="globex",
            name="Globex",
            plan=Tenant.Plan.TEAM,
            owner_email="owner@globex.test",
            owner_password=PASSWORD,
        )
        with schema_context(acme.schema_name):
            for role in (Role.ADMIN, Role.DEVELOPER, Role.OPERATOR, Role.VIEWER):
                User.objects.create_user(f"{role}@acme.test", PASSWORD, role=role)
        with schema_context("public"):
            User.objects.create_user("operator@platform.test", PASSWORD, is_staff=True)
        connection.set_schema_to_public()
    yield
    with django_db_blocker.unblock():
        connection.set_schema_to_public()
        with as_owner():
            # Worker and live-server child processes may still be letting go of their connections
            # (the app role's: the owner role is a member of it, so it may end them).
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    " AND backend_type = 'client backend' AND usename IN (current_user, %s)",  # not autovacuum
                    [app_role()],
                )
            connection.close()
            teardown_databases(db_cfg, verbosity=0)


@pytest.fixture(scope="module", autouse=True)
def _committed_workspaces_purged_by_module(django_db_setup, django_db_blocker):
    """Workspaces a test module commits (its tests', its fixtures', its servers') are purged, as
    the platform purges a workspace, once it is done: the test database holds acme, globex and
    what the running module made, so a whole-database backup, a migration of every schema or the
    operator's console costs the same late in a run as early."""
    with _committed_workspaces_purged(django_db_blocker):
        yield


_TEST_WORKSPACES = pytest.StashKey[tuple[int, object]]()


@pytest.fixture(autouse=True)
def _committed_workspaces_noted(_committed_workspaces_purged_by_module, request, django_db_blocker):
    """And those a test commits, once every fixture of it is torn down (a clock or settings it
    changed restored, its transaction rolled back): pytest_runtest_teardown below. Noted after
    the module's fixtures are set up, so theirs are left to the module."""
    with django_db_blocker.unblock():
        request.node.stash[_TEST_WORKSPACES] = (_last_workspace(), django_db_blocker)


# `bin/dev test` runs the suite in two phases: `-m "not alone"` in parallel, then the tests marked
# `alone` by themselves. The first phase names the tests it leaves to the second here, so that
# the second collects their files only, not the whole suite again (~15 s).
ALONE_TESTS = Path(os.environ.get("FOUNDRY_TEST_ALONE_LIST") or ROOT / "test-artifacts" / "alone-tests.txt")


@pytest.hookimpl(tryfirst=True)  # before the mark plugin deselects them
def pytest_collection_modifyitems(config, items):
    if config.option.markexpr != "not alone":
        return
    ALONE_TESTS.parent.mkdir(exist_ok=True)
    written = ALONE_TESTS.with_name(f"{ALONE_TESTS.name}.{os.getpid()}")  # each xdist worker its own, then renamed
    written.write_text("".join(f"{item.nodeid}\n" for item in items if item.get_closest_marker("alone")))
    written.replace(ALONE_TESTS)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item, nextitem):
    try:
        return (yield)
    finally:
        # After the session's last test the test database is gone and the connection names the
        # configured one again: that test's workspaces went with its module's.
        if nextitem is not None and (noted := item.stash.get(_TEST_WORKSPACES, None)) is not None:
            before, django_db_blocker = noted
            with django_db_blocker.unblock():
                _committed_workspaces_purge(before)


def _last_workspace() -> int:
    connection.set_schema_to_public()
    return Tenant.objects.aggregate(last=Max("pk"))["last"] or 0


def _committed_workspaces_purge(before: int) -> None:
    if connection.in_atomic_block:  # in a test's transaction (django_db marker): left to the module
        return
    assert connection.settings_dict["NAME"].startswith("test_"), "refusing to purge outside a test database"
    connection.set_schema_to_public()
    for tenant in Tenant.objects.filter(pk__gt=before).order_by("pk"):
        workspace_purge(tenant)
    connection.set_schema_to_public()


@contextmanager
def _committed_workspaces_purged(django_db_blocker):
    with django_db_blocker.unblock():
        before = _last_workspace()
    yield
    with django_db_blocker.unblock():
        _committed_workspaces_purge(before)


def workspace_purge(tenant: Tenant) -> None:
    """Purge a committed workspace now, as an operator would, from whatever state a test left it
    in (a legal hold on its trail, say): scheduled for deletion without a grace period, purged."""
    from apps.lifecycle.deletion import tenant_deletion_schedule, tenant_purge
    from apps.lifecycle.models import RetentionPolicy

    try:
        if tenant.status == Tenant.Status.DELETING and tenant.purge_after is None:  # set by SQL alone
            Tenant.objects.filter(pk=tenant.pk).update(status=Tenant.Status.SUSPENDED)
            tenant.status = Tenant.Status.SUSPENDED
        if tenant.status != Tenant.Status.DELETING:
            with schema_context(tenant.schema_name):
                RetentionPolicy.objects.filter(audit_legal_hold=True).update(audit_legal_hold=False)
            tenant = tenant_deletion_schedule(tenant=tenant, actor="service:tests", grace_days=0)
        tenant_purge(tenant=tenant, actor="service:tests")
    except Exception as exc:  # noqa: BLE001 — tell, and go on with the next one
        warnings.warn(f"workspace {tenant.slug} was not purged after its module: {exc!r}", stacklevel=1)


@pytest.fixture(autouse=True)
def _fresh_request_state():
    """Each test starts on the public schema with empty caches."""
    connection.set_schema_to_public()
    route_cache_clear()
    cache.clear()
    _identity_caches_clear()
    yield
    connection.set_schema_to_public()


@pytest.fixture(autouse=True)
def _repeat_window_held(monkeypatch):
    """Refusals audited once a minute (`audit_first_in_window`) count in the minute the test
    started: a test sending twenty must not see two events because the clock passed :00."""
    from apps.audit import services

    minute = services.repeat_window()
    monkeypatch.setattr(services, "repeat_window", lambda: minute)


def _identity_caches_clear() -> None:
    """The per-process copies of SSO configurations and identity providers' key sets, and the
    rate limiter's remembered refusals (the buckets themselves went with the cache)."""
    from apps.identity import jwks, oidc
    from apps.tenants.limits import refusals_forget

    refusals_forget()

    jwks._parsed.clear()
    oidc._recent.forget()


@pytest.fixture
def acme(db) -> Tenant:
    return Tenant.objects.get(slug="acme")


@pytest.fixture
def globex(db) -> Tenant:
    return Tenant.objects.get(slug="globex")


def tenant_user(tenant: Tenant, email: str) -> User:
    with schema_context(tenant.schema_name):
        return User.objects.get(email=email)


def audit_events(schema: str, *, data: dict | None = None, **filters) -> list:
    """Events of the chain of `schema` ("public": the platform's), oldest first, matching the
    queryset `filters` and, in their details, every item of `data`."""
    from apps.audit.models import PLATFORM, AuditEvent
    from apps.audit.scope import rls_scope

    with schema_context("public"):
        tenant_id = PLATFORM if schema == "public" else Tenant.objects.get(schema_name=schema).pk
        with rls_scope(tenant_id):
            events = list(AuditEvent.objects.filter(tenant_id=tenant_id, **filters).order_by("seq"))
    return [e for e in events if all(e.data.get(k) == v for k, v in (data or {}).items())]


def usage_rows(tenant: Tenant, **filters) -> list:
    """The tenant's rows of the usage ledger (public schema, Row-Level Security), oldest first."""
    from apps.billing.models import UsageRecord
    from apps.billing.rls import usage_scope

    with usage_scope(tenant.pk):
        return list(UsageRecord.objects.filter(tenant_id=tenant.pk, **filters).order_by("created_at", "id"))


def host_of(tenant: Tenant | None) -> str:
    return f"{tenant.slug}.localhost" if tenant else "localhost"


def client_for(tenant: Tenant | None, email: str | None = None) -> Client:
    """A test client on the tenant's host (None: the operator host), signed in as `email`."""
    client = Client(HTTP_HOST=host_of(tenant))
    if email:
        schema = tenant.schema_name if tenant else "public"
        with schema_context(schema):
            client.force_login(User.objects.get(email=email))
    return client


@pytest.fixture
def demo_owns_the_fixtures(monkeypatch):
    """`demo_data` seeds only the workspaces it made (their owner is the demo's): the test
    database's acme and globex, made by the fixtures, are taken as its own here."""
    from apps.tenants.management.commands import demo_data

    made = [(slug, name, plan, f"owner@{slug}.test") for slug, name, plan, _ in demo_data.DEMO_TENANTS]
    monkeypatch.setattr(demo_data, "DEMO_TENANTS", made)


@pytest.fixture
def owner_client(acme) -> Client:
    return client_for(acme, "owner@acme.test")


@pytest.fixture
def operator_client(db) -> Client:
    return client_for(None, "operator@platform.test")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open_wait(port: int, proc: subprocess.Popen, timeout: float = 15) -> None:
    """Wait until something listens on 127.0.0.1:`port`; RuntimeError if `proc` ends first."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"{proc.args[0]} did not start listening on {port}") from None
            time.sleep(0.05)


def server_env(**extra: str) -> dict[str, str]:
    """Environment for a server process of the test session: test settings and database."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": test_database_url(),
        "FOUNDRY_LOG_FORMAT": "text",
        **extra,
    }


@contextmanager
def server_process(command: list[str], *, port: int, env: dict[str, str], log: Path | None = None):
    """Run a web server process until its /healthz answers; stop it afterwards."""
    out = log.open("wb") if log else subprocess.DEVNULL
    proc = subprocess.Popen(command, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"{command[2]} did not start" + (f"; see {log}" if log else "")) from None
            time.sleep(0.1)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        if log:
            out.close()


@contextmanager
def redis_server():
    """A Redis server of the caller's own on a free port (so a test may stop it for real): the
    process and its port."""
    import shutil
    import socket as socket_

    binary = shutil.which("redis-server")
    assert binary, "redis-server is installed by bin/dev"
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            with socket_.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield proc, port
    finally:
        proc.kill()
        proc.wait()


def test_database_url() -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


test_database_url.__test__ = False  # a helper, not a test


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup):
    """A real Celery worker (prefork, one process) on this test session's database and broker."""
    from foundry.celery import app

    env = server_env()
    hostname = f"test-{os.environ.get('PYTEST_XDIST_WORKER', 'gw0')}-{os.getpid()}@localhost"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "foundry",
            "worker",
            "--pool",
            "prefork",
            "--concurrency",
            "1",
            "--hostname",
            hostname,
            "--loglevel",
            "WARNING",
            "--without-gossip",
            "--without-mingle",
        ],
        env=env,
        cwd=ROOT,
    )
    deadline = time.monotonic() + 60
    while not app.control.ping(destination=[hostname], timeout=0.5):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("the Celery worker did not start")
    yield proc
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="session")
def live_port(django_db_setup) -> int:
    port = free_port()
    env = server_env(FOUNDRY_BIND=f"127.0.0.1:{port}", FOUNDRY_WEB_WORKERS="1")
    log = ROOT / "test-artifacts" / f"gunicorn-{port}.log"
    log.parent.mkdir(exist_ok=True)
    command = [sys.executable, "-m", "gunicorn", "foundry.wsgi", "--config", "foundry/gunicorn.conf.py"]
    with server_process(command, port=port, env=env, log=log):
        yield port


@pytest.fixture(scope="session")
def mcp_port(django_db_setup) -> int:
    """uvicorn serving foundry.asgi (Django + /mcp), for the whole session (tests/mcp/conftest.py
    has the MCP client)."""
    port = free_port()
    log = ROOT / "test-artifacts" / f"uvicorn-{port}.log"
    log.parent.mkdir(exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "foundry.asgi:application",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--lifespan",
        "on",
        "--no-access-log",
    ]
    with server_process(command, port=port, env=server_env(), log=log):
        yield port


@pytest.fixture
def fresh_tenant(django_db_setup, django_db_blocker):
    """A committed tenant of this test's own (the live server cannot see uncommitted rows)."""
    slug = f"b{uuid.uuid4().hex[:10]}"
    with django_db_blocker.unblock():
        tenant = tenant_provision(
            slug=slug, name=f"Browser Co {slug}", owner_email=f"owner@{slug}.test", owner_password=PASSWORD
        ).tenant
        with schema_context(tenant.schema_name):
            User.objects.create_user(f"viewer@{slug}.test", PASSWORD, role=Role.VIEWER)
    return tenant
