"""AIP-160 filters: each example is checked in PostgreSQL and in Python over the same rows."""

import pytest

from foundry.filtering import FilterError
from tests.filtering.conftest import SPEC
from tests.specimens.models import Specimen


def _both(text: str, specimens) -> set[str]:
    compiled = SPEC.compile(text)
    in_sql = set(Specimen.objects.filter(compiled.q).values_list("pk", flat=True))
    in_python = {s.pk for s in specimens if compiled.matches(s.as_record())}
    assert in_sql == in_python, text
    return in_sql


@pytest.mark.parametrize(
    "text",
    [
        "",
        'name = "invoice"',
        "name = invoice",
        'name = "inv*"',
        'name = "*o*"',
        'name = "a\\*b"',
        'name != "inv*"',
        "name > report",
        "note = null",
        "note != null",
        "note:*",
        "name:*",
        "count > 1",
        "count >= -3 AND count < 10",
        "count = 1 OR count = 5 state = draft",
        "NOT count > 1",
        "-count > 1",
        "count = (1 OR 5 OR 10)",
        "price >= 9.99",
        "price < 0",
        "active = true",
        "active != false",
        'created_at > "2026-01-01T00:00:00Z"',
        'created_at <= "2026-01-01T01:00:00+01:00"',
        "elapsed > 60s",
        'elapsed >= "1h30m"',
        "elapsed = 0s",
        "state = active",
        "state != archived AND (active = true OR count > 5)",
        "tags:urgent",
        "NOT tags:red",
        "tags:*",
        "labels:env",
        "labels.env = prod",
        "labels.env != prod",
        "labels.env:*",
        'labels.team = ""',
        "count:*",
        "count = null",
        "active = true AND NOT (state = draft OR tags:blue) OR count = 0",
    ],
)
def test_filters_mean_the_same_in_sql_and_in_python(specimens, text):
    _both(text, specimens)


def test_precedence_follows_aip_160(specimens):
    # OR binds tighter than AND and juxtaposition: a b OR c == a AND (b OR c).
    implicit = _both("active = true state = draft OR count > 5", specimens)
    explicit = _both("active = true AND (state = draft OR count > 5)", specimens)
    assert implicit == explicit
    loose = _both("(active = true AND state = draft) OR count > 5", specimens)
    assert implicit != loose or implicit == loose == set()


def test_wildcards_match_prefixes_suffixes_and_escaped_stars(specimens):
    names = lambda text: {s.name for s in Specimen.objects.filter(SPEC.compile(text).q)}  # noqa: E731
    assert names('name = "inv*"') == {"invoice", "inv-2024"}
    assert names('name = "*voice"') == {"invoice", "Invoice"}
    assert names('name = "a\\*b"') == {"a*b"}


@pytest.mark.parametrize(
    ("text", "code", "position"),
    [
        ("name = ", "syntax_error", 7),
        ("name == x", "syntax_error", 6),
        ("(name = x", "syntax_error", 9),
        ("name = x)", "syntax_error", 8),
        ("nmae = x", "unknown_field", 0),
        ("active = x AND bogus.deep = 1", "invalid_value", 9),
        ("count > many", "invalid_value", 8),
        ("count = 1.5", "invalid_value", 8),
        ("active = yes", "invalid_value", 9),
        ('created_at > "yesterday"', "invalid_value", 13),
        ('created_at > "2026-02-30T00:00:00Z"', "invalid_value", 13),
        ("elapsed > 5 minutes", "invalid_value", 10),
        ("state = deleted", "invalid_value", 8),
        ("state > draft", "unsupported_operator", 0),
        ("active < true", "unsupported_operator", 0),
        ("tags = red", "unsupported_operator", 0),
        ("labels = x", "unsupported_operator", 0),
        ("invoice", "bare_value", 0),
        ("regex(name, x)", "unknown_function", 0),
        ('name = "bad \\q escape"', "invalid_escape", 12),
        ("x" * 5000, "filter_too_long", 4096),
        ("(" * 33 + "a = 1" + ")" * 33, "filter_too_deep", 32),
        (" ".join(["count = 1"] * 201), "filter_too_many_terms", None),
        ('name = "a\x00b"', "syntax_error", 9),
        ('name = "\ud800"', "syntax_error", 8),
        ('created_at > "9999-12-31T23:59:59-01:00"', "invalid_value", 13),
        ('created_at < "0001-01-01T00:00:00+01:00"', "invalid_value", 13),
        # Numbers, times and durations are written in ASCII digits: `\d`, int() and Decimal() also
        # read other scripts' (U+FF11 FULLWIDTH DIGIT ONE, U+0661 ARABIC-INDIC DIGIT ONE) as 1.
        ("count = \uff11", "invalid_value", 8),
        ("count = \u0661", "invalid_value", 8),
        ("price = \uff19.5", "invalid_value", 8),
        ('price = "1_000"', "invalid_value", 8),
        ('price = " 1"', "invalid_value", 8),
        ('elapsed > "\uff15s"', "invalid_value", 10),
        ('created_at > "\uff12026-01-01T00:00:00Z"', "invalid_value", 13),
    ],
)
def test_bad_filters_are_refused_with_a_code_and_position(text, code, position):
    with pytest.raises(FilterError) as exc:
        SPEC.compile(text)
    assert (exc.value.code, exc.value.position) == (code, position)


def test_unknown_field_errors_list_the_filterable_fields():
    with pytest.raises(FilterError, match=r"Filterable fields: active \(boolean\), count \(integer\)"):
        SPEC.compile("nope = 1")


def test_compiled_filters_are_cached():
    assert SPEC.compile("count > 1") is SPEC.compile("count > 1")


def test_declared_functions_are_callable():
    from django.db.models import Q

    from foundry.filtering import FilterSpec, StringField

    def has_prefix(args, pos):
        field, prefix = args[0].path, args[1].parts[0].text
        return Q(**{f"{field}__startswith": prefix}), lambda r: str(r.get(field, "")).startswith(prefix)

    spec = FilterSpec({"name": StringField()}, functions={"prefix": has_prefix})
    compiled = spec.compile('prefix(name, "inv")')
    assert compiled.matches({"name": "invoice"}) and not compiled.matches({"name": "quote"})
    assert str(compiled.q) == "(AND: ('name__startswith', 'inv'))"
