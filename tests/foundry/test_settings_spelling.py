"""Settings an operator may spell wrong (README, Configuration): a value that cannot be meant
stops the process at start with one line naming the variable — never quoting a URL's password —
and a list written with spaces after its commas means what it says. Each check starts a real
process with the runner's environment, FOUNDRY_DEBUG off, and one variable changed."""

import os
import secrets
import subprocess
import sys

import pytest

from tests.conftest import ROOT

CHECK = "import django; django.setup(); from django.conf import settings as s; print('started')"


def environment(**changes: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"FOUNDRY_DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE"}}
    env["DJANGO_SETTINGS_MODULE"] = "foundry.settings"
    env.setdefault("FOUNDRY_SECRET_KEY", secrets.token_urlsafe(50))
    env.update(changes)
    return env


def python(env: dict[str, str], code: str = CHECK) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)


def last_line(result: subprocess.CompletedProcess) -> str:
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    return lines[-1] if lines else ""


@pytest.mark.parametrize(
    ("name", "value"),
    [
        # logging.config failed with "Unable to configure handler 'console'", naming nothing.
        ("FOUNDRY_LOG_FORMAT", "xml"),
        ("FOUNDRY_LOG_LEVEL", "verbose"),
        # A bare env.int: "invalid literal for int()", even with DATABASE_URL set.
        ("FOUNDRY_PG_PORT", "abc"),
        # ALLOWED_HOSTS became ['https://foundry.example.com', ...]: every request a 400, and
        # service tokens issued by https://https://...; `*` put a wildcard in ALLOWED_HOSTS.
        ("FOUNDRY_BASE_DOMAIN", "https://foundry.example.com"),
        ("FOUNDRY_BASE_DOMAIN", "*"),
        ("FOUNDRY_BASE_DOMAIN", "foundry.example.com:8000"),
        # Blanks (an unfilled template) are a key everyone knows: sessions and reset links forgeable.
        ("FOUNDRY_SECRET_KEY", "   "),
    ],
)
def test_a_value_that_cannot_be_meant_stops_the_process_naming_it(name, value):
    result = python(environment(**{name: value}))
    assert result.returncode != 0
    assert f"ImproperlyConfigured: {name}" in last_line(result), last_line(result)


@pytest.mark.parametrize("url", ["postgres//foundry:{pw}@127.0.0.1:5432/foundry", "mysql://foundry:{pw}@db/foundry"])
def test_a_database_url_that_is_no_postgresql_url_is_named_without_its_password(url):
    """django-environ warned with the whole URL ("Engine not recognized from url: {'NAME':
    'ostgres//foundry:<password>@..."), then the settings failed with KeyError: 'USER'."""
    password = "pw-" + secrets.token_hex(8)
    result = python(environment(DATABASE_URL=url.format(pw=password)))
    assert result.returncode != 0
    assert password not in result.stdout + result.stderr
    assert "ImproperlyConfigured: DATABASE_URL" in last_line(result), last_line(result)


def test_a_log_level_in_lower_case_is_taken():
    code = CHECK.replace("print('started')", "print(s.LOG_LEVEL)")
    result = python(environment(FOUNDRY_LOG_LEVEL="debug", FOUNDRY_LOG_FORMAT=" Text"), code)
    assert result.returncode == 0, last_line(result)
    assert result.stdout.strip() == "DEBUG"


def test_lists_with_spaces_after_their_commas_hold_each_item_as_written():
    """django-environ's list keeps " b.example.com" with its space: Django's host check refused that
    host with a 400 on every request, and no Origin header ever equals " https://b.example"."""
    code = (
        "import django; django.setup(); from django.conf import settings as s;"
        "from django.http.request import validate_host;"
        "print(validate_host('b.example.com', s.ALLOWED_HOSTS), s.FOUNDRY_MCP_ALLOWED_ORIGINS)"
    )
    env = environment(
        FOUNDRY_EXTRA_ALLOWED_HOSTS="a.example.com, b.example.com,",
        FOUNDRY_MCP_ALLOWED_ORIGINS="https://a.example, https://b.example",
    )
    result = python(env, code)
    assert result.returncode == 0, last_line(result)
    assert result.stdout.strip() == "True ['https://a.example', 'https://b.example']"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("FOUNDRY_WEB_WORKERS", "0"),
        ("FOUNDRY_WEB_WORKERS", "abc"),
        ("FOUNDRY_WEB_THREADS", "0"),
        ("FOUNDRY_ACCESS_LOG", "maybe"),
    ],
)
def test_gunicorn_refuses_a_count_below_one_or_a_bad_switch_in_one_line(name, value):
    """0 workers passed gunicorn's check: the server listened and never answered. A value that is
    no number, or a switch neither yes nor no, printed gunicorn's traceback of the config file."""
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--check-config", "-c", "foundry/gunicorn.conf.py", "foundry.wsgi"],
        env=environment(**{name: value}),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert last_line(result).startswith(name), last_line(result)
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("scheme", ["postgresql", "pgsql", "psql"])
def test_every_spelling_of_a_postgresql_url_django_environ_reads_starts(scheme):
    """pgsql:// and psql:// are django-environ's names for PostgreSQL too; deployments using them
    started before the URL was checked."""
    url = os.environ["DATABASE_URL"]
    result = python(environment(DATABASE_URL=scheme + url[url.index("://") :]))
    assert result.returncode == 0 and "started" in result.stdout, last_line(result)
