"""A version's message is checked on every publish and rollback, as given; a 422's problem list is
bounded. Found by a review: a publish or rollback that changed nothing returned before the message
was checked (the same bad message a 400 or a 200 by the content); control characters that
str.strip() takes for spaces were stripped at either end instead of refused; and every problem of
a document was listed (24,000 bad label names in 250 KB: an 11 MB answer)."""

import json

import pytest
from django_tenants.utils import schema_context

from apps.catalog.models import Version
from foundry.manifests.validation import MAX_PROBLEMS
from tests.api.conftest import api, issue
from tests.catalog.conftest import example

FINANCE = example("domains/finance.yaml")
FINANCE_V2 = FINANCE.replace("A company that bills us.", "A company that bills us (v2).")
BAD_MESSAGES = ["x" * 501, "Fix \u202egnp.exe", "esc\x1b[31m"]


def post(client, path: str, body: dict):
    return client.post(f"/api/v1/{path}", json.dumps(body), content_type="application/json")


@pytest.fixture
def dev(acme):
    return api(acme, issue(acme, role="developer", scopes=("read", "write")))


@pytest.mark.parametrize("message", BAD_MESSAGES)
def test_a_no_op_publish_still_refuses_a_bad_message(acme, dev, message):
    """A publish of the content the latest version holds refuses a bad message as a real one does."""
    assert post(dev, "domains", {"content": FINANCE, "message": "v1"}).status_code == 201
    refused = post(dev, "domains", {"content": FINANCE_V2, "message": message})
    assert (refused.status_code, refused.json()["error"]["code"]) == (400, "message_invalid")  # a real publish
    response = post(dev, "domains", {"content": FINANCE, "message": message})
    assert response.status_code == 400, f"no-op publish with a bad message answered {response.status_code}"
    assert response.json()["error"]["code"] == "message_invalid"


@pytest.mark.parametrize("message", BAD_MESSAGES)
def test_a_no_op_rollback_still_refuses_a_bad_message(acme, dev, message):
    """A rollback to the content the latest version holds refuses a bad message too."""
    assert post(dev, "domains", {"content": FINANCE, "message": "v1"}).status_code == 201
    response = post(dev, "domains/finance/rollback", {"version": 1, "message": message})
    assert response.status_code == 400, f"no-op rollback with a bad message answered {response.status_code}"
    assert response.json()["error"]["code"] == "message_invalid"


@pytest.mark.parametrize("message", ["\x1c\x1d\x1e\x1f", "\x85", "\x0b\x0c", "Fix\x1f", "\x1eFix"])
def test_a_message_of_or_ending_in_control_characters_is_refused_not_stripped(acme, dev, message):
    """U+000B, U+000C, U+001C-U+001F and U+0085 are control characters wherever they stand."""
    response = post(dev, "domains", {"content": FINANCE, "message": message})
    with schema_context(acme.schema_name):
        stored = list(Version.objects.values_list("message", flat=True))
    assert response.status_code == 400, f"{message!r} was accepted (stored as {stored!r})"
    assert response.json()["error"]["code"] == "message_invalid"


def test_a_document_with_tens_of_thousands_of_problems_gets_a_bounded_422(acme, dev):
    """The first MAX_PROBLEMS are listed and one more counts the rest: the answer stays smaller than
    ten times the request, though every problem echoes a 255-character file name."""
    count = 24000
    labels = ", ".join(f"A{i}: x" for i in range(count))
    source = (
        "apiVersion: foundry/v1\nkind: Domain\nmetadata:\n  name: bad-labels\n"
        f"  labels: {{{labels}}}\nspec:\n  entities:\n    a: {{fields: {{b: {{type: string}}}}}}\n"
    )
    body = {"content": source, "filename": "f" * 255}
    response = post(dev, "domains", body)
    assert response.status_code == 422
    size = len(response.content)
    listed = len(response.json()["error"]["details"])
    assert size < 10 * len(json.dumps(body)), f"a {len(source)} byte document got a {size} byte 422 ({listed} problems)"
    assert listed == MAX_PROBLEMS + 1, f"{listed} problems listed"
    assert response.json()["error"]["details"][-1]["code"] == "too_many_problems"
