"""PostgreSQL's own command-line tools (pg_dump, pg_restore): which binary, and how to connect.

Connections are passed in the tools' environment (PGPASSWORD …), never on the command line.
"""

import os
import shutil
from pathlib import Path

import environ
from django.conf import settings
from django.db import connection


class ToolMissing(Exception):
    """The tool of the server's major version is not installed; the message says how to get it."""


def pg_binary(name: str) -> str:
    """`name` (pg_dump, pg_restore) of the server's major version, as Debian installs them, else
    the one on PATH."""
    major = connection.pg_version // 10000
    candidate = Path(f"/usr/lib/postgresql/{major}/bin/{name}")
    if candidate.is_file():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise ToolMissing(f"{name} of PostgreSQL {major} was not found (apt-get install postgresql-client-{major}).")
    return found


def pg_environment(
    *, url: str = "", database: str | None = None, application: str = "foundry-backup"
) -> dict[str, str]:
    """The libpq environment of a connection: `url`, else the application's database."""
    config = environ.Env.db_url_config(url) if url else settings.DATABASES["default"]
    values = {
        "PGHOST": config.get("HOST") or "127.0.0.1",
        "PGPORT": str(config.get("PORT") or 5432),
        "PGUSER": config.get("USER") or "",
        "PGPASSWORD": config.get("PASSWORD") or "",
        "PGDATABASE": database or config["NAME"],
        "PGCONNECT_TIMEOUT": "10",
        "PGAPPNAME": application,
    }
    # The URL's query parameters that libpq also reads from the environment (TLS above all): the
    # tools connect as securely as the application does.
    for option, value in (config.get("OPTIONS") or {}).items():
        if option in _LIBPQ_ENVIRONMENT and value not in (None, ""):
            values[_LIBPQ_ENVIRONMENT[option]] = str(value)
    # The process's own PG* variables, which its libpq reads too (PGSSLMODE ...), but where a
    # value of this connection's replaces them.
    return {**os.environ, **{k: v for k, v in values.items() if v}}


# libpq's connection parameters with an environment variable (PGSSLMODE …), but those set above.
_LIBPQ_ENVIRONMENT = {
    option: "PG" + option.upper().replace("_", "")
    for option in (
        "sslmode",
        "sslrootcert",
        "sslcert",
        "sslkey",
        "sslcrl",
        "sslcrldir",
        "sslcertmode",
        "sslnegotiation",
        "service",
        "servicefile",
        "sslsni",
        "ssl_min_protocol_version",
        "ssl_max_protocol_version",
        "sslcompression",
        "requirepeer",
        "require_auth",
        "channel_binding",
        "gssencmode",
        "krbsrvname",
        "gsslib",
        "target_session_attrs",
        "load_balance_hosts",
        "hostaddr",
        "passfile",
        "options",
    )
}
