"""OCSF mapping and JSON-lines splitting of the export, on real rows (PostgreSQL) and the real API
(found by a review: actions the platform records mapped to Other, a successful logon named no
`user`, and a line reader split an event at U+0085)."""

import json

import pytest
from django.test import Client

from apps.audit.export import ExportRange, chain_head, export_lines
from apps.audit.services import audit_record
from tests.api.conftest import api, issue
from tests.conftest import PASSWORD, tenant_user


def _ocsf(tenant, after: int) -> list[dict]:
    span = ExportRange(tenant.pk, after, chain_head(tenant.pk))
    text = "".join(export_lines(span, fmt="ocsf", checkpoints=False))
    return [json.loads(line) for line in text.split("\n") if line]


@pytest.mark.parametrize(
    "action, expected",
    [
        ("retention.updated", (6003, 3, "Update")),  # the retention settings changed
        ("plan.update", (6003, 3, "Update")),  # the workspace's plan changed
        ("export.downloaded", (6003, 2, "Read")),  # a tenant export archive was downloaded
        ("tenant.purged", (6003, 4, "Delete")),  # a workspace's data destroyed
        ("member.provisioned", (3001, 1, "Create")),  # an account created by SSO/JIT provisioning
    ],
)
def test_actions_the_platform_records_map_to_their_ocsf_activity(acme, action, expected):
    """Actions the platform records map to their activity: `retention.updated`, `plan.update`
    (Update), `export.downloaded` (Read), `tenant.purged` (Delete), and `member.provisioned` (an
    account created by provisioning) to Account Change: Create. They were 99 Other, which a SIEM
    rule on type_uid misses."""
    head = chain_head(acme.pk)
    audit_record(action=action, actor="test", chain=acme.pk)
    (record,) = _ocsf(acme, head)
    assert (record["class_uid"], record["activity_id"], record["activity_name"]) == expected


def test_a_successful_logon_names_the_user_who_logged_on_as_a_failed_one_does(acme):
    """OCSF Authentication (3002) requires `user`, the account authenticating. A failed password
    sign-in names it as its target; the successful one (recorded with the user as actor and no
    target) names the same account from its actor. It had no `user` at all, so a SIEM
    correlating failures and successes per account by `user.uid` never saw the successes."""
    viewer = tenant_user(acme, "viewer@acme.test")
    head = chain_head(acme.pk)
    client = Client(HTTP_HOST="acme.localhost")
    assert client.post("/login/", {"username": "viewer@acme.test", "password": "wrong"}).status_code == 200
    assert client.post("/login/", {"username": "viewer@acme.test", "password": PASSWORD}).status_code == 302
    records = [r for r in _ocsf(acme, head) if r["class_uid"] == 3002]
    failed, succeeded = records
    assert (failed["status"], succeeded["status"]) == ("Failure", "Success")
    assert "user" in failed and failed["user"]["uid"] == str(viewer.pk)
    assert succeeded.get("user") == failed["user"]


def test_an_export_line_holds_no_character_a_line_reader_breaks_at(acme):
    """U+0085 (NEL), U+2028 and U+2029 in an event are written escaped (\\u0085, \\u2028,
    \\u2029: the same JSON). A User-Agent byte 0x85 (read as latin-1 by WSGI) is enough to put one
    in the trail: the next export carries the recorded `audit.export` with it. Written raw, a
    consumer splitting the NDJSON body with str.splitlines() (as tests/audit/test_export.py
    `lines_of` does) cut that event in two, neither half JSON."""
    token = issue(acme, role="admin", scopes=["read"])
    odd = api(acme, token)
    odd.defaults["HTTP_USER_AGENT"] = "collector/1.0\x85build 7"
    head = chain_head(acme.pk)
    assert odd.get("/api/v1/audit/export", {"after": head}).status_code == 200  # recorded with its UA
    response = api(acme, token).get("/api/v1/audit/export", {"after": head, "checkpoints": "false"})
    body = b"".join(response.streaming_content).decode("utf-8")
    assert any("\x85" in json.loads(line).get("user_agent", "") for line in body.split("\n") if line)
    for line in body.splitlines():
        json.loads(line)  # ValueError: a line cut at the NEL
