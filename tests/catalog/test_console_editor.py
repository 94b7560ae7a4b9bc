"""The console editor: paste or upload YAML, validate (problems beside their lines), publish."""

import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django_tenants.utils import schema_context

from apps.catalog.models import Document, Version
from tests.catalog.conftest import example, publish
from tests.conftest import audit_events, client_for

FINANCE = example("domains/finance.yaml")
TRIAGE = example("agents/invoice-triage.yaml")
BROKEN_TRIAGE = TRIAGE.replace("provider: scripted", "provider: gpt").replace("max_steps: 12", "max_steps: many")
BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)
)
HTMX = {"HTTP_HX_REQUEST": "true"}


def line_of(source: str, text: str) -> int:
    return source.splitlines().index(text) + 1


def documents(tenant) -> list:
    with schema_context(tenant.schema_name):
        return list(Document.objects.values_list("kind", "name", "latest_number"))


def marked(response) -> list[tuple[int, int, str]]:
    """(line, column, code) of every problem shown beside a line."""
    return [(line.number, p.column, p.code) for line in response.context["listing"].lines for p in line.problems]


def test_validate_shows_each_problem_beside_its_line_as_an_htmx_fragment(acme, finance):
    response = client_for(acme, "viewer@acme.test").post("/catalog/agent/validate/", {"source": BROKEN_TRIAGE}, **HTMX)
    assert response.status_code == 200
    assert response.templates[0].name == "catalog/_validation.html"
    provider, steps = line_of(BROKEN_TRIAGE, "    provider: gpt"), line_of(BROKEN_TRIAGE, "    max_steps: many")
    assert sorted(marked(response)) == [(provider, 15, "provider_unknown"), (steps, 16, "schema_type")]
    html = response.content.decode()
    assert f'<tr class="problem" data-line="{provider}" data-column="15" data-code="provider_unknown">' in html
    assert "<html" not in html  # a fragment
    assert documents(acme) == [("agent", "invoice-triage", 1), ("domain", "finance", 1)]


def test_validate_without_htmx_renders_the_editor_with_the_text_and_the_problems(acme, finance):
    response = client_for(acme, "viewer@acme.test").post("/catalog/agent/validate/", {"source": BROKEN_TRIAGE})
    assert response.status_code == 200
    assert response.context["source"] == BROKEN_TRIAGE
    assert {code for _line, _column, code in marked(response)} == {"provider_unknown", "schema_type"}
    assert b"<textarea" in response.content


def test_a_valid_document_is_reported_valid_and_a_document_of_the_other_kind_says_where_it_goes(acme, finance):
    viewer = client_for(acme, "viewer@acme.test")
    response = viewer.post("/catalog/agent/validate/", {"source": TRIAGE}, **HTMX)
    assert response.context["result"].ok and b"Valid agent <strong>invoice-triage</strong>." in response.content
    response = viewer.post("/catalog/agent/validate/", {"source": FINANCE}, **HTMX)
    assert response.context["other_kind"] == "domain"
    assert b'href="/catalog/domain/new/"' in response.content


def test_a_viewer_can_validate_but_not_publish(acme, finance):
    viewer = client_for(acme, "viewer@acme.test")
    editor = viewer.get("/catalog/domain/new/")
    assert editor.status_code == 200
    assert editor.context["can_edit"] is False
    assert b">Publish<" not in editor.content and b">Validate<" in editor.content
    changed = FINANCE.replace("GBP]", "GBP, CHF]")
    assert viewer.post("/catalog/domain/validate/", {"source": changed}, **HTMX).context["result"].ok
    assert viewer.post("/catalog/domain/publish/", {"source": changed, "message": "x"}).status_code == 403
    assert documents(acme) == [("agent", "invoice-triage", 1), ("domain", "finance", 1)]


def test_a_developer_publishes_pasted_yaml_and_lands_on_the_new_version(acme):
    developer = client_for(acme, "developer@acme.test")
    assert b">Publish<" in developer.get("/catalog/domain/new/").content
    response = developer.post("/catalog/domain/publish/", {"source": FINANCE, "message": "First cut"})
    assert (response.status_code, response["Location"]) == (302, "/domains/finance/?version=1")
    with schema_context(acme.schema_name):
        version = Version.objects.get(document__name="finance")
        assert (version.number, version.message, version.author_email) == (1, "First cut", "developer@acme.test")
        assert version.source == FINANCE
        assert len(audit_events("acme", action="dis.publish")) == 1
    assert b"Published finance v1." in developer.get(response["Location"]).content
    # the same content again creates nothing
    again = developer.post("/catalog/domain/publish/", {"source": FINANCE}, follow=True)
    assert b"Unchanged: finance v1 already has this content." in again.content
    assert documents(acme) == [("domain", "finance", 1)]


def test_an_uploaded_file_is_validated_and_published_like_pasted_text(acme, finance):
    developer = client_for(acme, "developer@acme.test")
    upload = SimpleUploadedFile("triage.yaml", BROKEN_TRIAGE.encode(), content_type="application/yaml")
    response = developer.post("/catalog/agent/validate/", {"file": upload}, **HTMX)
    assert {p.file for p in response.context["result"].problems} == {"triage.yaml"}
    assert {code for _line, _column, code in marked(response)} == {"provider_unknown", "schema_type"}

    upload = SimpleUploadedFile("triage.yaml", BROKEN_TRIAGE.encode(), content_type="application/yaml")
    refused = developer.post("/catalog/agent/publish/", {"file": upload, "source": ""})
    assert refused.status_code == 422
    assert refused.context["source"] == BROKEN_TRIAGE  # in the textarea, to be fixed
    assert documents(acme) == [("agent", "invoice-triage", 1), ("domain", "finance", 1)]

    fixed = TRIAGE.replace("max_steps: 12", "max_steps: 8").encode()
    upload = SimpleUploadedFile("triage.yaml", fixed, content_type="application/yaml")
    response = developer.post("/catalog/agent/publish/", {"file": upload, "message": "Fewer steps"})
    assert (response.status_code, response["Location"]) == (302, "/agents/invoice-triage/?version=2")


def test_publishing_an_invalid_document_shows_its_problems_beside_their_lines_and_changes_nothing(acme, finance):
    response = client_for(acme, "developer@acme.test").post("/catalog/agent/publish/", {"source": BROKEN_TRIAGE})
    assert response.status_code == 422
    assert {code for _line, _column, code in marked(response)} == {"provider_unknown", "schema_type"}
    assert b"2 problems</strong> in agent <strong>invoice-triage</strong>" in response.content
    assert documents(acme) == [("agent", "invoice-triage", 1), ("domain", "finance", 1)]


@pytest.mark.parametrize(
    ("path", "data", "status", "code"),
    [
        ("/catalog/agent/publish/", {"source": FINANCE}, 400, "kind_mismatch"),
        ("/catalog/domain/publish/", {"source": FINANCE, "message": "x" * 501}, 400, "message_invalid"),
    ],
)
def test_refusals_other_than_problems_are_shown_in_the_editor(acme, path, data, status, code):
    response = client_for(acme, "developer@acme.test").post(path, data)
    assert (response.status_code, response.context["error"].code) == (status, code)
    assert response.context["source"] == FINANCE
    assert documents(acme) == []


def test_the_editor_starts_from_an_existing_version(acme, finance):
    publish(acme, FINANCE.replace("GBP]", "GBP, CHF]"))
    developer = client_for(acme, "developer@acme.test")
    assert developer.get("/catalog/domain/new/?name=finance&version=1").context["source"] == FINANCE
    assert "CHF" in developer.get("/catalog/domain/new/?name=finance").context["source"]
    page = developer.get("/domains/finance/?version=1")
    assert b'href="/catalog/domain/new/?name=finance&amp;version=1"' in page.content
    assert developer.get("/catalog/domain/new/?name=finance&version=7").status_code == 404
    assert developer.get("/catalog/domain/new/?name=nothing").status_code == 404
    assert developer.get("/catalog/agent/new/?name=finance").status_code == 404  # a domain is not an agent


HOSTILE = [
    pytest.param({"source": BOMB}, "yaml_alias_expansion", id="billion-laughs"),
    pytest.param({"source": "x: !!python/object/apply:os.system [echo hi]\n"}, "yaml_tag_forbidden", id="python-tag"),
    pytest.param({"source": "[" * 200 + "]" * 200}, "yaml_too_deep", id="deep-nesting"),
    pytest.param({"source": "a: 1\na: 2\n"}, "yaml_duplicate_key", id="duplicate-key"),
    pytest.param({"source": ""}, "yaml_empty", id="empty"),
    pytest.param({"source": "apiVersion: foundry/v1\nkind: Domain\n"}, "schema_required", id="missing-fields"),
    pytest.param({"source": "x" * (1024 * 1024 + 1)}, "yaml_too_large", id="huge-paste"),
    pytest.param(
        {"file": ("logo.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe")}, "encoding_invalid", id="binary-upload"
    ),
    pytest.param({"file": ("big.yaml", b"a: " + b"x" * (1024 * 1024) + b"\n")}, "yaml_too_large", id="huge-upload"),
]


def _form(data: dict) -> dict:
    if "file" in data:
        name, content = data["file"]
        return {"file": SimpleUploadedFile(name, content), "message": "hostile"}
    return {**data, "message": "hostile"}


@pytest.mark.parametrize(("data", "code"), HOSTILE)
def test_hostile_or_broken_input_is_refused_quickly_with_a_clear_error_and_no_side_effects(acme, data, code):
    developer = client_for(acme, "developer@acme.test")
    for kind in ("domain", "agent"):
        started = time.perf_counter()
        validated = developer.post(f"/catalog/{kind}/validate/", _form(data), **HTMX)
        published = developer.post(f"/catalog/{kind}/publish/", _form(data))
        assert time.perf_counter() - started < 2
        assert validated.status_code == 200
        assert published.status_code == 422
        for response in (validated, published):
            assert code in {p.code for p in response.context["result"].problems}
            assert code.encode() in response.content
    assert documents(acme) == []
    with schema_context(acme.schema_name):
        assert not audit_events("acme", action__startswith="dis.")


def test_the_crlf_line_breaks_a_browser_submits_for_a_textarea_are_stored_as_typed(acme):
    developer = client_for(acme, "developer@acme.test")
    developer.post("/catalog/domain/publish/", {"source": FINANCE.replace("\n", "\r\n")})
    with schema_context(acme.schema_name):
        assert Version.objects.get(document__name="finance").source == FINANCE
