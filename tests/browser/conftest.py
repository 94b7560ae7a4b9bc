"""Browser harness: the app served by a real gunicorn on loopback, driven by Debian's Chromium
through Playwright. A failing test leaves a screenshot in test-artifacts/screenshots/."""

import os
import sys
import uuid

import pytest
from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.accounts.permissions import Role
from apps.tenants.services import tenant_provision
from tests.conftest import PASSWORD, ROOT, free_port, server_env, server_process

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"


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
def browser():
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop on this thread; the ORM calls tests make
    # between browser steps are still plain synchronous code.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    playwright = sync_playwright().start()
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
    yield browser
    browser.close()
    playwright.stop()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture
def page(browser, request):
    context = browser.new_context()
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    failed = any(
        getattr(request.node, f"rep_{when}", None) and getattr(request.node, f"rep_{when}").failed
        for when in ("setup", "call")
    )
    if failed:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{request.node.name}.png"), full_page=True)
    context.close()


@pytest.fixture
def fresh_tenant(django_db_blocker):
    """A committed tenant of this test's own (the live server cannot see uncommitted rows)."""
    slug = f"b{uuid.uuid4().hex[:10]}"
    with django_db_blocker.unblock():
        tenant = tenant_provision(
            slug=slug, name=f"Browser Co {slug}", owner_email=f"owner@{slug}.test", owner_password=PASSWORD
        ).tenant
        with schema_context(tenant.schema_name):
            User.objects.create_user(f"viewer@{slug}.test", PASSWORD, role=Role.VIEWER)
    return tenant
