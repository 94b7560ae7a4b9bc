"""Deployment settings read from the environment (foundry/settings.py), each imported in a
subprocess with a production-like environment, as a real process would start."""

import base64
import os
import secrets
import subprocess
import sys

import pytest

from tests.conftest import ROOT


def production_env(**extra: str) -> dict[str, str]:
    """A production-like environment: no DEBUG, a strong secret key, TLS settings on; none of the
    test runner's own switches (the browser tests' DJANGO_ALLOW_ASYNC_UNSAFE)."""
    runner_only = {"FOUNDRY_DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env = {k: v for k, v in os.environ.items() if k not in runner_only}
    env.update(
        DJANGO_SETTINGS_MODULE="foundry.settings",
        FOUNDRY_SECRET_KEY=secrets.token_urlsafe(50),
        FOUNDRY_SECURE_COOKIES="1",
        FOUNDRY_SSL_REDIRECT="1",
        FOUNDRY_HSTS_SECONDS="31536000",
        FOUNDRY_BEHIND_TLS_PROXY="1",
        FOUNDRY_AUDIT_SIGNING_KEYS="a1:" + "A" * 43,
        FOUNDRY_SERVICE_SIGNING_KEYS="s1:" + "B" * 43,
        FOUNDRY_ENCRYPTION_KEYS="C" * 43,
    )
    env.update(extra)
    return env


def settings_import(env: dict[str, str], expression: str) -> subprocess.CompletedProcess:
    code = f"import foundry.settings as s; print(repr({expression}))"
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)


def deploy_check(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.mark.parametrize(
    ("variable", "setting"),
    [
        ("FOUNDRY_SECURE_COOKIES", "(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE)"),
        ("FOUNDRY_SSL_REDIRECT", "s.SECURE_SSL_REDIRECT"),
        ("FOUNDRY_BEHIND_TLS_PROXY", "getattr(s, 'SECURE_PROXY_SSL_HEADER', None)"),
    ],
)
def test_a_malformed_security_switch_is_refused_not_silently_off(variable, setting):
    """A security switch that is neither a known true nor a known false spelling (FOUNDRY_SECURE_COOKIES=enabled,
    a typo) stops the process with ImproperlyConfigured naming it; django-environ's env.bool read it as off."""
    value = "enabled"
    result = settings_import(production_env(**{variable: value}), setting)
    assert result.returncode != 0, f"{variable}={value!r} was accepted silently as: {result.stdout.strip()}"
    assert "ImproperlyConfigured" in result.stderr and variable in result.stderr


@pytest.mark.parametrize("value", ["ok", "y", "n"])
def test_a_switch_spelt_otherwise_than_the_readme_lists_is_refused(value):
    result = settings_import(production_env(FOUNDRY_SECURE_COOKIES=value), "s.SESSION_COOKIE_SECURE")
    assert result.returncode != 0, f"FOUNDRY_SECURE_COOKIES={value!r} was accepted as {result.stdout.strip()}"
    assert "ImproperlyConfigured" in result.stderr


def test_an_empty_switch_is_its_default_not_off():
    """As compose passes a variable it was not given: /readyz's worker check (on by default) stays on."""
    result = settings_import(production_env(FOUNDRY_READY_REQUIRES_WORKER=""), "s.FOUNDRY_READY_REQUIRES_WORKER")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "ten"])
def test_a_number_setting_that_is_no_finite_number_is_refused(value):
    """FOUNDRY_PROVIDER_TIMEOUT_SECONDS=nan passed its `<= 0` check, and every model call then failed."""
    result = settings_import(
        production_env(FOUNDRY_PROVIDER_TIMEOUT_SECONDS=value), "s.FOUNDRY_PROVIDER_TIMEOUT_SECONDS"
    )
    assert result.returncode != 0, f"{value!r} was accepted as {result.stdout.strip()}"
    assert "ImproperlyConfigured" in result.stderr and "FOUNDRY_PROVIDER_TIMEOUT_SECONDS" in result.stderr


@pytest.mark.parametrize(
    ("name", "value"),
    [
        # beat stores 0 s as the interval (a negative one too) and sends audit.sign_heads in a
        # tight loop, ~300 messages a second, each a pass over every chain
        ("FOUNDRY_AUDIT_SIGN_INTERVAL", "0"),
        ("FOUNDRY_AUDIT_SIGN_INTERVAL", "-300"),
        # kombu would hand every unacknowledged (acks_late) task to another worker at each sweep
        ("FOUNDRY_CELERY_VISIBILITY_TIMEOUT", "0"),
        ("FOUNDRY_CELERY_VISIBILITY_TIMEOUT", "-1"),
        ("FOUNDRY_CELERY_RESTORE_INTERVAL", "0"),
        ("FOUNDRY_SESSION_AGE", "-5"),
        ("FOUNDRY_BACKUP_KEEP", "seven"),
    ],
)
def test_a_pacing_number_below_its_floor_or_no_number_stops_the_process_naming_it(name, value):
    result = settings_import(production_env(**{name: value}), "1")
    assert result.returncode != 0, f"{name}={value!r} was accepted"
    assert "ImproperlyConfigured" in result.stderr and name in result.stderr, result.stderr[-500:]


def test_a_malformed_audit_signing_key_is_refused_at_start():
    """A mistyped FOUNDRY_AUDIT_SIGNING_KEYS stops the process when settings load (foundry/keys.py); parsed
    only when a checkpoint was signed, it left every chain head unsigned, only logged by beat's task."""
    result = deploy_check(production_env(FOUNDRY_AUDIT_SIGNING_KEYS="k1:not-a-key"))
    output = result.stdout + result.stderr
    assert result.returncode != 0 or "FOUNDRY_AUDIT_SIGNING_KEYS" in output, output


def test_a_malformed_service_signing_key_is_refused_at_start():
    """A mistyped FOUNDRY_SERVICE_SIGNING_KEYS stops the process when settings load; parsed on first use,
    it made /.well-known/jwks.json and every service token answer 500."""
    result = deploy_check(production_env(FOUNDRY_SERVICE_SIGNING_KEYS="svc1:short"))
    output = result.stdout + result.stderr
    assert result.returncode != 0 or "FOUNDRY_SERVICE_SIGNING_KEYS" in output, output


def test_a_service_key_id_listed_twice_is_refused_at_start():
    """A rotation that kept the key id (`k1:NEW,k1:OLD`) would sign with the first key and look the
    id up as the last: every new service token refused. The process stops naming the setting."""
    seeds = [base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=") for _ in range(2)]
    result = deploy_check(production_env(FOUNDRY_SERVICE_SIGNING_KEYS=f"k1:{seeds[0]},k1:{seeds[1]}"))
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "FOUNDRY_SERVICE_SIGNING_KEYS: key id k1 is listed twice" in output, output


def test_the_deploy_check_is_quiet_for_a_complete_production_environment():
    """Beside Django's note on HSTS preload (an irreversible opt-in left to the operator), nothing."""
    result = deploy_check(production_env(FOUNDRY_TRUSTED_PROXIES="10.0.0.0/8"))
    assert result.returncode == 0, result.stderr
    assert "foundry.W00" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("unset", "check", "consequence"),
    [
        ("FOUNDRY_ENCRYPTION_KEYS", "foundry.W002", "encryption_not_configured"),
        ("FOUNDRY_SERVICE_SIGNING_KEYS", "foundry.W003", "service_keys_not_configured"),
    ],
)
def test_the_deploy_check_names_a_missing_platform_key(unset, check, consequence):
    """Without it a part of the platform answers 503 at its first use; the deploy check says so before."""
    result = deploy_check(production_env(FOUNDRY_TRUSTED_PROXIES="10.0.0.0/8", **{unset: ""}))
    output = result.stdout + result.stderr
    assert f"({check}) {unset} is not set" in output and consequence in output, output


def test_the_deploy_check_names_a_tls_proxy_whose_addresses_are_not_listed():
    """Behind a proxy without FOUNDRY_TRUSTED_PROXIES every client has the proxy's address (sign-in
    limits lock a member out for everyone), as docs/operations/deployment.md warns."""
    result = deploy_check(production_env(FOUNDRY_TRUSTED_PROXIES=""))
    output = result.stdout + result.stderr
    assert "(foundry.W004) FOUNDRY_BEHIND_TLS_PROXY is on but FOUNDRY_TRUSTED_PROXIES is empty" in output, output
    quiet = deploy_check(production_env(FOUNDRY_TRUSTED_PROXIES="", FOUNDRY_BEHIND_TLS_PROXY="0"))
    assert "foundry.W004" not in quiet.stdout + quiet.stderr


def test_a_malformed_sentinel_list_is_refused_without_echoing_its_password():
    """FOUNDRY_REDIS_SENTINELS takes `host:port` only. An entry written as a Redis URL, password
    and all, is refused by its number: the start-up error ends up in whatever collects a crashing
    process's log, so it names the setting that takes the password instead of quoting the entry
    (as the key settings name a failing entry by its number)."""
    password = "hunter2-sentinel-Pw9x"
    env = production_env(FOUNDRY_REDIS_SENTINELS=f"sentinel-0:26379,redis://:{password}@sentinel-1:26379")
    result = settings_import(env, "s.FOUNDRY_REDIS_SENTINELS")
    assert result.returncode != 0, result.stdout
    assert "FOUNDRY_REDIS_SENTINELS: entry 2 is not host:port" in result.stderr, result.stderr[-2000:]
    assert "FOUNDRY_REDIS_SENTINEL_PASSWORD" in result.stderr, result.stderr[-2000:]
    assert password not in result.stderr + result.stdout, result.stderr[-600:]


@pytest.mark.parametrize(
    "tls, secure",
    [
        ({"FOUNDRY_SSL_REDIRECT": "1"}, True),
        ({"FOUNDRY_BEHIND_TLS_PROXY": "1"}, True),
        ({"FOUNDRY_BEHIND_TLS_PROXY": "1", "FOUNDRY_SECURE_COOKIES": "0"}, False),  # said otherwise
        ({}, False),  # plain http (a laptop's bin/dev)
    ],
    ids=["ssl-redirect", "tls-proxy", "told-not-to", "plain-http"],
)
def test_cookies_are_secure_by_default_where_the_platform_is_served_over_tls(tls, secure):
    """A deployment that says it is served over TLS (it redirects to https, or a TLS proxy fronts
    it) marks the session and CSRF cookies Secure without FOUNDRY_SECURE_COOKIES: left unset, a
    sign-in over https set cookies a plain-http request would carry (found by a review)."""
    env = production_env()
    for name in ("FOUNDRY_SECURE_COOKIES", "FOUNDRY_SSL_REDIRECT", "FOUNDRY_BEHIND_TLS_PROXY"):
        env.pop(name)
    env.update(tls)
    done = settings_import(env, "(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE)")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == repr((secure, secure))
