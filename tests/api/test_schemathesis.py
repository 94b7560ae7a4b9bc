"""Schemathesis fuzzes every operation of /api/schema/ against a real server (gunicorn)."""

import subprocess
import sys
from pathlib import Path

from tests.api.conftest import issue

ST = Path(sys.executable).with_name("st")


def test_schemathesis_finds_no_server_errors_or_schema_violations(live_port, fresh_tenant, django_db_blocker):
    with django_db_blocker.unblock():  # committed: the server process must see the token
        token = issue(fresh_tenant, role="owner")
    result = subprocess.run(
        [
            str(ST),
            "run",
            f"http://127.0.0.1:{live_port}/api/schema/",
            "--header",
            f"Host: {fresh_tenant.slug}.localhost",
            "--header",
            f"Authorization: Bearer {token}",
            "--checks",
            "all",
            # Filters and order_by are strings the OpenAPI schema cannot constrain (they follow
            # the AIP-160/132 grammars), so well-typed but ill-formed ones are rightly refused.
            "--exclude-checks",
            "positive_data_acceptance",
            # Revoking tokens at random would revoke the very token this run uses.
            "--exclude-operation-id",
            "tokens_revoke",
            "--max-examples",
            "25",
            "--seed",
            "1",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
