"""What a bearer JWT from the workspace's identity provider costs an API request, against an API token.

Creates its own database with one tenant, starts a real OpenID provider on loopback (panva's
oidc-provider, tests/idp: node and tests/idp/node_modules come from `bin/dev test`), configures
the tenant's SSO against it (`sso_configure`, discovery included), signs a member in once through
/sso/login/ and /sso/callback/ (so their (issuer, subject) is linked, as in production), issues
an API token with the same role, and gets an access token (a JWT for the tenant's audience) from
the provider's token endpoint. Then measures, through Django's WSGI handler in this process (the
application a WSGI server calls, with its request_started/finished signals; no sockets):

(a) Requests per second of three lines, in interleaved rounds whose order rotates, so that the
    machine's noise falls on all three alike; medians of the rounds:
    - GET /healthz, unauthenticated (answered by the first middleware): the floor of the stack;
    - GET /api/v1/workspace with `Authorization: Bearer af_…` (an API token);
    - GET /api/v1/workspace with `Authorization: Bearer <JWT>` (the IdP's access token).
    The JWT's overhead is its time per request over the API token's (median of the rounds'
    ratios). The key set (JWKS) is fetched from the provider once, during warm-up; the fetches
    (and parses) counted while measuring must be 0: every measured request verified against the
    cached set. Also: SQL statements and Redis commands per request of each line.
(b) Where the time of each authentication goes: its steps timed one by one in the tenant's
    schema (medians of many calls, interleaved), `token_authenticate` against `bearer_authenticate`
    split into header + unverified issuer, SsoConfiguration lookup, cached JWKS lookup, the
    parsed-key cache, `jwt.decode` (RSA signature + claims) and the ExternalIdentity lookup, beside
    a bare PostgreSQL round trip. A step called in a tight loop runs with warm CPU caches: the
    steps add up to somewhat less than the whole.

    bin/dev bench bench/auth.py [--rounds 9] [--seconds 1.0] [--profile]

Target: JWT requests ≤ 15% slower than API-token requests (time per request; JWKS cached), and
no JWKS fetch while measuring. Exits 1 if one is missed. --profile adds a cProfile of the JWT
requests. Uses its own database, foundry_bench_auth, dropped at the end. Takes ~1 minute.
"""

import argparse
import cProfile
import io
import os
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._support import bench_database, verdict

SLUG = "bench"
HOST = f"{SLUG}.localhost"
OWNER = "owner@bench.test"
MEMBER = "ada"  # signs in through the provider; her groups map to admin
CLIENT_ID = "foundry-bench"
CLIENT_SECRET = "bench-client-secret-0123456789"
AUDIENCE = "api://foundry-bench"
ROLE_MAP = {"foundry-admins": "admin"}
API_PATH = "/api/v1/workspace"
HEALTH_PATH = "/healthz"
MAX_OVERHEAD = 0.15
WARMUP_REQUESTS = 200
COUNTED_REQUESTS = 50  # requests whose SQL statements and Redis commands are counted
STEP_CALLS = 2000  # calls per step timed in (b), in STEP_ROUNDS interleaved rounds
STEP_ROUNDS = 10


# --- setup ------------------------------------------------------------------------------------


def start_provider():
    from tests.oidc_provider import OidcProvider

    return OidcProvider(
        clients=[
            {
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "redirect_uris": [f"http://{HOST}/sso/callback/"],
                "post_logout_redirect_uris": [f"http://{HOST}/login/"],
                "audience": AUDIENCE,
            }
        ],
        accounts={
            MEMBER: {
                "sub": f"sub-{MEMBER}",
                "email": f"{MEMBER}@bench.test",
                "email_verified": True,
                "name": MEMBER.title(),
                "groups": ["foundry-admins"],
            }
        },
        access_token_ttl=3600,
    )


@dataclass
class Bench:
    schema: str
    api_token: str
    jwt: str
    issuer: str


def setup(provider) -> Bench:
    from django.test import Client
    from django_tenants.utils import schema_context

    from apps.accounts.models import User
    from apps.identity.models import ExternalIdentity
    from apps.identity.services import sso_configure
    from apps.tenants.services import tenant_provision
    from apps.tokens.services import token_issue

    tenant = tenant_provision(slug=SLUG, name="Bench", owner_email=OWNER).tenant
    with schema_context(tenant.schema_name):
        owner = User.objects.get(email=OWNER)
        sso_configure(
            actor=owner,
            issuer=provider.issuer,
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            audience=AUDIENCE,
            scopes="openid email profile groups",
            roles_claim="groups",
            role_map=ROLE_MAP,
            allowed_domains=["bench.test"],
        )
        api_token = token_issue(
            actor="bench", name="bench", role="admin", scopes=["read", "write", "run", "admin"]
        ).plaintext

    # One real sign-in: links (issuer, sub) to a new member, as a first console sign-in does.
    browser = Client(HTTP_HOST=HOST)
    response = browser.get("/sso/login/")
    if response.status_code != 302:
        sys.exit(f"/sso/login/ answered {response.status_code}: {response.content[:300]!r}")
    callback = urlsplit(provider.follow_login(response["Location"], MEMBER))
    response = browser.get(f"{callback.path}?{callback.query}")
    if response.status_code != 302 or response["Location"] != "/":
        sys.exit(f"the sign-in failed: {response.status_code} {response.content[:500]!r}")
    with schema_context(tenant.schema_name):
        identity = ExternalIdentity.objects.select_related("user").get(issuer=provider.issuer)
        if identity.user.role != "admin":
            sys.exit(f"the member signed in as {identity.user.role}, not admin")
    return Bench(tenant.schema_name, api_token, provider.access_token(CLIENT_ID, MEMBER), provider.issuer)


# --- (a) requests per second ------------------------------------------------------------------


@dataclass
class Line:
    name: str
    label: str
    environ: dict
    rates: list[float] = field(default_factory=list)  # requests/s of each round
    cpu: list[float] = field(default_factory=list)  # this process's CPU seconds per request, each round
    statements: float = 0.0
    redis_commands: float = 0.0

    @property
    def rate(self) -> float:
        return statistics.median(self.rates)


class Counting:
    """Wraps a function and counts its calls (the JWKS fetches and parses)."""

    def __init__(self, module, name: str):
        self.module, self.name, self.calls = module, name, 0
        self.original = getattr(module, name)

        def counted(*args, **kwargs):
            self.calls += 1
            return self.original(*args, **kwargs)

        setattr(module, name, counted)

    def restore(self) -> None:
        setattr(self.module, self.name, self.original)


def lines(bench: Bench) -> list[Line]:
    from django.test import RequestFactory

    def environ(path: str, token: str | None) -> dict:
        headers = {"HTTP_HOST": HOST, **({"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {})}
        return RequestFactory().get(path, **headers).environ

    return [
        Line("health", f"GET {HEALTH_PATH}, unauthenticated (floor)", environ(HEALTH_PATH, None)),
        Line("api-token", f"GET {API_PATH}, Bearer af_… (API token)", environ(API_PATH, bench.api_token)),
        Line("jwt", f"GET {API_PATH}, Bearer JWT (IdP access token)", environ(API_PATH, bench.jwt)),
    ]


def requester() -> Callable[[dict], str]:
    """One request through Django's WSGI application, as a WSGI server makes it; its status."""
    from django.core.handlers.wsgi import WSGIHandler

    handler = WSGIHandler()

    def request(environ: dict) -> str:
        status: list[str] = []
        response = handler({**environ, "wsgi.input": io.BytesIO()}, lambda s, h, exc_info=None: status.append(s))
        try:
            for _chunk in response:
                pass
        finally:
            response.close()  # request_finished, as a server does
        return status[0]

    return request


def check(request: Callable[[dict], str], line: Line, n: int) -> None:
    for _ in range(n):
        status = request(line.environ)
        if not status.startswith("200"):
            sys.exit(f"{line.label}: answered {status}")


def count_costs(request: Callable[[dict], str], line: Line) -> None:
    """SQL statements and Redis commands per request (not timed)."""
    import redis
    from django.conf import settings
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        check(request, line, COUNTED_REQUESTS)
    line.statements = len(queries) / COUNTED_REQUESTS
    client = redis.Redis.from_url(settings.CACHES["default"]["LOCATION"])
    try:
        before = client.info("stats")["total_commands_processed"]
        check(request, line, COUNTED_REQUESTS)
        after = client.info("stats")["total_commands_processed"]
    finally:
        client.close()
    line.redis_commands = (after - before - 1) / COUNTED_REQUESTS  # minus the first INFO


def measure(request: Callable[[dict], str], all_lines: list[Line], rounds: int, seconds: float) -> None:
    for round_ in range(rounds):
        shift = round_ % len(all_lines)
        for line in all_lines[shift:] + all_lines[:shift]:
            environ, done = line.environ, 0
            cpu_started = time.process_time()
            started = time.perf_counter()
            stop = started + seconds
            while True:
                status = request(environ)
                done += 1
                if status[0] != "2":
                    sys.exit(f"{line.label}: answered {status} while measuring")
                if time.perf_counter() >= stop:
                    break
            line.rates.append(done / (time.perf_counter() - started))
            line.cpu.append((time.process_time() - cpu_started) / done)


# --- (b) the steps of each authentication --------------------------------------------------------


def _timed(steps: dict[str, Callable[[], object]]) -> list[tuple[str, float]]:
    """Median µs per call of each step: STEP_ROUNDS interleaved rounds of STEP_CALLS // STEP_ROUNDS calls."""
    times: dict[str, list[float]] = {label: [] for label in steps}
    for fn in steps.values():
        for _ in range(20):  # warm-up
            fn()
    for _ in range(STEP_ROUNDS):
        for label, fn in steps.items():
            for _ in range(STEP_CALLS // STEP_ROUNDS):
                started = time.perf_counter()
                fn()
                times[label].append(time.perf_counter() - started)
    return [(label, statistics.median(spent) * 1e6) for label, spent in times.items()]


def steps(bench: Bench) -> list[tuple[str, float]]:
    import jwt
    from django.db import connection
    from django_tenants.utils import schema_context

    from apps.identity import bearer, jwks
    from apps.identity.oidc import sso_config, sso_config_recent
    from apps.identity.services import sso_network_policy
    from apps.identity.verify import CLOCK_SKEW_SECONDS, token_parts
    from apps.tokens.services import token_authenticate

    with schema_context(bench.schema):
        config = sso_config()
        header = token_parts(bench.jwt)[0]
        jwk = jwks.jwks_key(config.jwks_uri, header["kid"], sso_network_policy)
        key = jwks.public_key(jwk, header["alg"])
        cache_key = jwks._cache_key(config.jwks_uri)
        options = {"require": ["exp", "iat", "iss", "aud", "sub"], "strict_aud": False}

        def decode() -> dict:
            return jwt.decode(
                bench.jwt,
                key=key,
                algorithms=[header["alg"]],
                issuer=config.issuer,
                audience=config.api_audience,
                leeway=CLOCK_SKEW_SECONDS,
                options=options,
            )

        claims = decode()

        def identity():
            return bearer.member_of(config.issuer, claims["sub"])

        if token_authenticate(bench.api_token) is None or bearer.bearer_authenticate(bench.jwt)[0] is None:
            sys.exit("an authentication failed in (b)")
        connection.ensure_connection()
        raw = connection.connection  # the psycopg connection: a bare round trip, no ORM

        kid, alg, key_token = header["kid"], header["alg"], bench.api_token
        return _timed(
            {
                "reference: a bare PostgreSQL round trip (SELECT 1, no ORM)": lambda: raw.execute("SELECT 1"),
                "API token: token_authenticate (1 SQL statement)": lambda: token_authenticate(key_token),
                "JWT: bearer_authenticate, all of it": lambda: bearer.bearer_authenticate(bench.jwt),
                "  token_parts (size bound, unverified header and claims)": lambda: token_parts(bench.jwt),
                "  sso_config_recent(): per-process copy (FOUNDRY_TENANT_ROUTE_TTL)": sso_config_recent,
                "    sso_config(): what a miss costs (1 SQL statement)": sso_config,
                "  jwks_key: this process's copy of the cached set": lambda: jwks.jwks_key(
                    config.jwks_uri, kid, sso_network_policy
                ),
                "    the shared cache's Redis GET (every JWKS_LOCAL_SECONDS)": lambda: jwks.cache.get(cache_key),
                "  public_key: parsed-key cache (json.dumps of the JWK)": lambda: jwks.public_key(jwk, alg),
                "  jwt.decode: RS256 signature + claims": decode,
                "  the member by (issuer, subject) (1 SQL statement, a join)": identity,
            }
        )


# --- report -----------------------------------------------------------------------------------


def profile(request: Callable[[dict], str], line: Line, n: int = 2000) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    check(request, line, n)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).strip_dirs().sort_stats("tottime")
    stats.print_stats(25)
    print(f"\ncProfile of {n} JWT requests (sorted by own time; cProfile inflates Python-heavy code):")
    print(out.getvalue())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9, help="interleaved rounds, each line once per round")
    parser.add_argument("--seconds", type=float, default=1.0, help="seconds of requests per line per round")
    parser.add_argument("--profile", action="store_true", help="also print a cProfile of the JWT requests")
    args = parser.parse_args()

    load_at_start = os.getloadavg()[0]
    provider = start_provider()
    try:
        with bench_database("foundry_bench_auth") as env:
            env = {
                **env,
                "DJANGO_SETTINGS_MODULE": "foundry.settings",
                # The provider listens on loopback, which the SSRF guard refuses unless allowed.
                "FOUNDRY_HTTP_TOOL_ALLOWED_NETWORKS": "127.0.0.0/8",
            }
            os.environ.update(env)
            import django

            django.setup()
            from django.conf import settings
            from django.db import connections

            from apps.identity import jwks

            if settings.DEBUG:
                sys.exit("DEBUG is on in the bench settings; the figures would mean nothing")
            fetches, parses = Counting(jwks, "_fetch"), Counting(jwks, "_parse")
            try:
                bench = setup(provider)
                request = requester()
                all_lines = lines(bench)
                for line in all_lines:
                    check(request, line, WARMUP_REQUESTS)
                    count_costs(request, line)
                warmup_fetches, warmup_parses = fetches.calls, parses.calls
                measure(request, all_lines, args.rounds, args.seconds)
                measured_fetches, measured_parses = fetches.calls - warmup_fetches, parses.calls - warmup_parses
                breakdown = steps(bench)
                if args.profile:
                    profile(request, all_lines[2])
            finally:
                fetches.restore()
                parses.restore()
                connections.close_all()
    finally:
        provider.stop()

    health, token, jwt_line = all_lines
    ratios = [j / t for j, t in zip(jwt_line.rates, token.rates, strict=True)]  # JWT req/s over token req/s
    ratio = statistics.median(ratios)
    overhead = 1 / ratio - 1  # JWT time per request over the token's
    print(
        f"\n(a) Requests through Django's WSGI handler in one process (no sockets), tenant host {HOST}: "
        f"median of {args.rounds} interleaved rounds x {args.seconds:g} s per line, order rotated; "
        f"{os.cpu_count()} CPUs, load average {load_at_start:.1f} at start"
    )
    print(f"  {'line':<54}{'req/s':>8}{'µs/req':>9}{'CPU µs':>8}{'SQL':>5}{'Redis':>7}   rounds (req/s)")
    for line in all_lines:
        print(
            f"  {line.label:<54}{line.rate:>8,.0f}{1e6 / line.rate:>9,.0f}{statistics.median(line.cpu) * 1e6:>8,.0f}"
            f"{line.statements:>5.0f}{line.redis_commands:>7.1f}   {', '.join(f'{r:,.0f}' for r in line.rates)}"
        )
    print(
        "  (CPU µs: this process's CPU per request, without PostgreSQL's and Redis's; SQL: statements per request,"
        " besides the connection health check Django makes on each request that uses the database)"
    )
    spread = f"{min(ratios):.3f} to {max(ratios):.3f}"
    print(
        f"  JWT / API token req/s: {ratio:.3f} (median of the rounds' ratios; range {spread}); "
        f"JWT +{overhead * 100:.1f}% time per request (+{1e6 / jwt_line.rate - 1e6 / token.rate:.0f} µs "
        f"between the medians); above the /healthz floor: API token {1e6 / token.rate - 1e6 / health.rate:,.0f} µs, "
        f"JWT {1e6 / jwt_line.rate - 1e6 / health.rate:,.0f} µs"
    )
    print(
        f"  JWKS: {warmup_fetches} fetch(es) and {warmup_parses} parse(s) from the provider during warm-up; "
        f"{measured_fetches} fetch(es), {measured_parses} parse(s) while measuring"
    )
    print(
        f"\n(b) The steps of each authentication, called directly in the tenant's schema: median µs of "
        f"{STEP_CALLS} calls in {STEP_ROUNDS} interleaved rounds"
    )
    for label, micros in breakdown:
        print(f"  {label:<62}{micros:>8.1f} µs")

    print("\nTargets")
    ok = verdict(
        f"JWT requests ≤ {MAX_OVERHEAD:.0%} slower than API-token requests (+{overhead * 100:.1f}%)",
        overhead <= MAX_OVERHEAD,
    )
    ok &= verdict(f"no JWKS fetch while measuring ({measured_fetches})", measured_fetches == 0)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
