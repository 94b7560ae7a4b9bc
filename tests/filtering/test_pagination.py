import base64
import contextlib
import time
import zlib

import pytest
from django.test import override_settings
from django_tenants.utils import schema_context
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from foundry.filtering import FilterError
from foundry.filtering.ordering import OrderSpec
from foundry.filtering.pagination import MAX_PAGE_SIZE, page_size_parse, paginate, token_open, token_seal
from tests.filtering.conftest import SPEC
from tests.specimens.models import Specimen

ORDER = OrderSpec(
    {"name": None, "count": None, "price": None, "created_at": None, "elapsed": None, "state": None, "id": None},
    default="id",
)


def _all_pages(queryset, ordering, filter_text="", size=7) -> list[int]:
    seen, token = [], None
    for _ in range(100):
        page = paginate(
            queryset, resource="specimens", ordering=ordering, filter_text=filter_text, page_size=size, page_token=token
        )
        seen += [row.pk for row in page.items]
        token = page.next_page_token
        if not token:
            return seen
    raise AssertionError("pagination did not end")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    fields=st.lists(
        st.sampled_from(["name", "count", "price", "created_at", "elapsed", "state"]), unique=True, max_size=3
    ),
    directions=st.lists(st.booleans(), min_size=3, max_size=3),
    size=st.integers(min_value=1, max_value=25),
)
def test_paging_through_any_ordering_returns_every_row_once_in_order(specimens, fields, directions, size):
    text = ", ".join(f"{f} desc" if d else f for f, d in zip(fields, directions, strict=False))
    ordering = ORDER.parse(text)
    expected = list(Specimen.objects.order_by(*ordering.expressions()).values_list("pk", flat=True))
    assert _all_pages(Specimen.objects.all(), ordering, size=size) == expected


def test_pages_follow_the_filter(specimens):
    compiled = SPEC.compile("count > 0")
    queryset = Specimen.objects.filter(compiled.q)
    ordering = ORDER.parse("count desc, name")
    expected = list(queryset.order_by(*ordering.expressions()).values_list("pk", flat=True))
    assert _all_pages(queryset, ordering, "count > 0", size=4) == expected


def test_a_token_reused_with_another_filter_or_order_is_refused(specimens):
    ordering = ORDER.parse("name")
    page = paginate(Specimen.objects.all(), resource="specimens", ordering=ordering, page_size=5)
    for kwargs in (
        {"filter_text": "count > 0", "ordering": ordering, "resource": "specimens"},
        {"filter_text": "", "ordering": ORDER.parse("name desc"), "resource": "specimens"},
        {"filter_text": "", "ordering": ordering, "resource": "members"},
    ):
        with pytest.raises(FilterError) as exc:
            paginate(Specimen.objects.all(), page_size=5, page_token=page.next_page_token, **kwargs)
        assert exc.value.code == "page_token_mismatch"


def test_a_token_of_another_tenant_is_refused(specimens, acme, globex):
    ordering = ORDER.parse("name")
    with schema_context("acme"):
        token = paginate(Specimen.objects.all(), resource="specimens", ordering=ordering, page_size=5).next_page_token
    with schema_context("globex"), pytest.raises(FilterError) as exc:
        paginate(Specimen.objects.all(), resource="specimens", ordering=ordering, page_size=5, page_token=token)
    assert exc.value.code == "page_token_mismatch"


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-2] + "xx",
        lambda t: "A" + t,
        lambda t: "garbage",
        lambda t: t[:40],
        lambda t: t + "é",
        # Fernet's base64 read past these, and opened the token they were made from.
        lambda t: t * 3,
        lambda t: t + "==",
        lambda t: " " + t,
        lambda t: t + "\x00",
    ],
)
def test_a_tampered_token_is_refused(specimens, mangle):
    ordering = ORDER.parse("name")
    token = paginate(Specimen.objects.all(), resource="specimens", ordering=ordering, page_size=5).next_page_token
    with pytest.raises(FilterError) as exc:
        paginate(Specimen.objects.all(), resource="specimens", ordering=ordering, page_size=5, page_token=mangle(token))
    assert exc.value.code == "invalid_page_token"


def test_a_validly_signed_token_with_a_forged_shape_is_refused(specimens):
    ordering = ORDER.parse("name")
    page = paginate(Specimen.objects.all(), resource="specimens", ordering=ordering, page_size=5)
    payload = token_open(page.next_page_token)
    forged = token_seal({**payload, "k": payload["k"][:1]})
    with pytest.raises(FilterError) as exc:
        paginate(Specimen.objects.all(), resource="specimens", ordering=ordering, page_size=5, page_token=forged)
    assert exc.value.code == "invalid_page_token"


def test_a_token_shows_nothing_of_the_rows_it_pages_through(specimens):
    """Encrypted: the last row's key (its name and id here; for audit events, an id numbered
    across every workspace) cannot be read out of it without the server's key."""
    ordering = ORDER.parse("name")
    page = paginate(Specimen.objects.filter(name="receipt"), resource="specimens", ordering=ordering, page_size=2)
    token = page.next_page_token
    names = [b"receipt"]
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    for readable in (raw, *(raw[start:] for start in range(len(raw)))):
        with contextlib.suppress(zlib.error):
            readable = zlib.decompress(readable)
        assert not [name for name in names if name in readable]


def test_a_token_sealed_under_a_retired_secret_key_still_opens_and_under_another_is_refused(specimens):
    ordering = ORDER.parse("name")
    with override_settings(SECRET_KEY="the-key-before-rotation-0123456789abcdef"):
        token = paginate(Specimen.objects.all(), resource="specimens", ordering=ordering, page_size=5).next_page_token
    with override_settings(
        SECRET_KEY="the-key-after-rotation-0123456789abcdef",
        SECRET_KEY_FALLBACKS=["the-key-before-rotation-0123456789abcdef"],
    ):
        page = paginate(Specimen.objects.all(), resource="specimens", ordering=ordering, page_size=5, page_token=token)
        assert page.items
    with override_settings(SECRET_KEY="the-key-after-rotation-0123456789abcdef"), pytest.raises(FilterError) as exc:
        paginate(Specimen.objects.all(), resource="specimens", ordering=ordering, page_size=5, page_token=token)
    assert exc.value.code == "invalid_page_token"


def test_a_token_older_than_a_day_has_expired(specimens, monkeypatch):
    ordering = ORDER.parse("name")
    token = paginate(Specimen.objects.all(), resource="specimens", ordering=ordering, page_size=5).next_page_token
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + 86400 + 5)
    with pytest.raises(FilterError) as exc:
        paginate(Specimen.objects.all(), resource="specimens", ordering=ordering, page_size=5, page_token=token)
    assert exc.value.code == "page_token_expired"


@pytest.mark.parametrize(
    ("raw", "size"),
    [
        (None, 50),
        ("0", 50),
        (0, 50),
        ("0" * 20, 50),
        ("10", 10),
        ("0010", 10),
        ("5000", MAX_PAGE_SIZE),
        ("9" * 12, MAX_PAGE_SIZE),
        ("10000000000000", MAX_PAGE_SIZE),
        ("9" * 5000, MAX_PAGE_SIZE),
    ],
)
def test_page_size_defaults_and_caps(raw, size):
    """Above the maximum, however many digits, is lowered to it (docs/api/filtering.md, AIP-158)."""
    assert page_size_parse(raw) == size


@pytest.mark.parametrize("raw", ["", "-1", "ten", "1.5", " 5", "٣", "-" + "9" * 5000])
def test_bad_page_sizes_are_refused(raw):
    with pytest.raises(FilterError) as exc:
        page_size_parse(raw)
    assert exc.value.code == "invalid_page_size"


@pytest.mark.parametrize(
    ("text", "code", "position"),
    [
        ("nope", "unknown_order_field", 0),
        ("name, nope desc", "unknown_order_field", 6),
        ("name sideways", "invalid_order_by", 0),
        ("name,, count", "invalid_order_by", 5),
        ("name, name desc", "duplicate_order_field", 6),
        ("x" * 600, "order_by_too_long", None),
    ],
)
def test_bad_order_by_is_refused_with_a_code_and_position(text, code, position):
    with pytest.raises(FilterError) as exc:
        ORDER.parse(text)
    assert (exc.value.code, exc.value.position) == (code, position)


def test_order_by_is_canonical_and_ends_with_the_primary_key():
    assert ORDER.parse(" created_at   desc ,name ").canonical() == "created_at desc, name, id"
    assert ORDER.parse("").canonical() == "id"
