"""A base URL whose host is a literal address spelled with Unicode dots (U+3002 IDEOGRAPHIC FULL
STOP, U+FF0E FULLWIDTH FULL STOP, U+FF61) is the literal address it reads as to the providers'
HTTP client (httpx2: 169。254。169。254 is 169.254.169.254), and is refused when saved like one
(`base_url_refused`; plain http to a public one `base_url_insecure`; docs/providers.md). It was
taken for a name (urlsplit keeps those dots) and stored, refused only at call time."""

import json

import pytest
from django.core.exceptions import ValidationError
from django_tenants.utils import schema_context

from apps.providers.services import credential_set
from tests.api.conftest import api, issue
from tests.conftest import tenant_user
from tests.providers.conftest import KEY, stored

IDEOGRAPHIC = "\u3002"
FULLWIDTH = "\uff0e"
HALFWIDTH_IDEOGRAPHIC = "\uff61"


@pytest.mark.parametrize(
    "url",
    [
        f"https://169{IDEOGRAPHIC}254{IDEOGRAPHIC}169{IDEOGRAPHIC}254/v1",  # cloud metadata
        f"https://127{FULLWIDTH}0{FULLWIDTH}0{FULLWIDTH}1/v1",  # loopback
        f"https://10{HALFWIDTH_IDEOGRAPHIC}0{HALFWIDTH_IDEOGRAPHIC}0{HALFWIDTH_IDEOGRAPHIC}1/v1",  # private
        f"https://127.0.0.1{IDEOGRAPHIC}/v1",  # trailing dot, as the existing trailing-'.' test
    ],
)
def test_a_literal_private_address_spelled_with_unicode_dots_is_refused_when_saved(acme, url):
    """The host is the literal address the HTTP client will use (httpx2.URL(url).host is the
    dotted IP); it must be refused at save time like its ASCII spelling (`base_url_refused`)."""
    with schema_context(acme.schema_name), pytest.raises(ValidationError) as info:
        credential_set(actor=tenant_user(acme, "owner@acme.test"), provider="openai", api_key=KEY, base_url=url)
    assert info.value.error_dict["base_url"][0].code in ("base_url_refused", "base_url_invalid")


def test_the_api_refuses_a_metadata_address_spelled_with_ideographic_dots(acme):
    """Over the REST API the same URL is stored (200) today; it should be a 400 and store nothing."""
    client = api(acme, issue(acme))
    url = f"https://169{IDEOGRAPHIC}254{IDEOGRAPHIC}169{IDEOGRAPHIC}254/latest"
    response = client.put(
        "/api/v1/providers/openai", json.dumps({"api_key": KEY, "base_url": url}), content_type="application/json"
    )
    assert response.status_code == 400, response.content
    assert stored(acme) is None


def test_plain_http_to_a_public_literal_spelled_with_unicode_dots_is_refused_when_saved(acme):
    """`http://8.8.8.8/v1` is `base_url_insecure` at save time; `http://8。8。8。8/v1` is accepted."""
    url = f"http://8{IDEOGRAPHIC}8{IDEOGRAPHIC}8{IDEOGRAPHIC}8/v1"
    with schema_context(acme.schema_name), pytest.raises(ValidationError) as info:
        credential_set(actor=tenant_user(acme, "owner@acme.test"), provider="openai", api_key=KEY, base_url=url)
    assert info.value.error_dict["base_url"][0].code in ("base_url_insecure", "base_url_invalid")
