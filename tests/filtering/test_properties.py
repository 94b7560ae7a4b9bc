"""Property tests: generated filters mean the same in PostgreSQL and in Python, and no input,
however mangled, gets anything but a FilterError (let alone a database error)."""

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from foundry.filtering import FilterError
from tests.filtering.conftest import LABEL_KEYS, LABEL_VALUES, NAMES, NOTES, SPEC, STATES, TAGS
from tests.specimens.models import Specimen

SETTINGS = settings(
    max_examples=int(os.environ.get("FOUNDRY_HYPOTHESIS_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


_string_values = st.sampled_from([n for n in NAMES + NOTES if n is not None]).map(_quoted) | st.sampled_from(
    ['"inv*"', '"*o*"', '"*"', '"a\\*b"', "report"]
)
_restriction = st.one_of(
    st.tuples(st.sampled_from(["name", "note"]), st.sampled_from(["=", "!=", "<", ">=", ":"]), _string_values),
    st.tuples(st.just("note"), st.sampled_from(["=", "!="]), st.just("null")),
    st.tuples(st.sampled_from(["name", "note", "count", "price", "created_at", "elapsed"]), st.just(":"), st.just("*")),
    st.tuples(
        st.just("count"),
        st.sampled_from(["=", "!=", "<", "<=", ">", ">="]),
        st.sampled_from(["-3", "0", "1", "5", "10", "2147483647"]),
    ),
    st.tuples(st.just("count"), st.sampled_from(["=", "!="]), st.just("null")),
    st.tuples(st.just("price"), st.sampled_from(["=", "<", ">="]), st.sampled_from(["0", "9.99", "-1.5", "10"])),
    st.tuples(st.just("active"), st.sampled_from(["=", "!="]), st.sampled_from(["true", "false"])),
    st.tuples(
        st.just("created_at"),
        st.sampled_from(["<", ">=", "=", "!="]),
        st.sampled_from(['"2026-01-01T00:00:00Z"', '"2025-12-29T00:00:00Z"', '"2026-01-01T02:00:00+01:00"']),
    ),
    st.tuples(st.just("elapsed"), st.sampled_from(["<", ">", "="]), st.sampled_from(["90s", "0s", '"1h30m"', "1m"])),
    st.tuples(st.just("state"), st.sampled_from(["=", "!="]), st.sampled_from(STATES)),
    st.tuples(st.just("tags"), st.just(":"), st.sampled_from([*TAGS, "*"])),
    st.tuples(st.just("labels"), st.just(":"), st.sampled_from(LABEL_KEYS)),
    st.tuples(
        st.sampled_from([f"labels.{k}" for k in LABEL_KEYS]),
        st.sampled_from(["=", "!=", ":"]),
        st.sampled_from([_quoted(v) for v in LABEL_VALUES] + ["*"]),
    ),
).map(lambda t: f"{t[0]} {t[1]} {t[2]}" if t[1] != ":" else f"{t[0]}:{t[2]}")

filters = st.recursive(
    _restriction,
    lambda inner: st.one_of(
        st.tuples(inner, inner).map(lambda t: f"{t[0]} AND {t[1]}"),
        st.tuples(inner, inner).map(lambda t: f"{t[0]} OR {t[1]}"),
        st.tuples(inner, inner).map(lambda t: f"{t[0]} {t[1]}"),
        inner.map(lambda t: f"NOT ({t})"),
        inner.map(lambda t: f"-({t})"),
        inner.map(lambda t: f"({t})"),
    ),
    max_leaves=8,
)


@SETTINGS
@given(text=filters)
def test_generated_filters_select_the_same_rows_in_sql_and_python(specimens, text):
    compiled = SPEC.compile(text)
    in_sql = set(Specimen.objects.filter(compiled.q).values_list("pk", flat=True))
    in_python = {s.pk for s in specimens if compiled.matches(s.as_record())}
    assert in_sql == in_python


_tokens = st.sampled_from(
    [
        "name",
        "count",
        "labels.env",
        "tags",
        "created_at",
        "AND",
        "OR",
        "NOT",
        "-",
        "(",
        ")",
        "=",
        "!=",
        "<",
        ">=",
        ":",
        "*",
        ".",
        ",",
        '"',
        "'",
        "\\",
        "null",
        "true",
        "1e999",
        "-0",
        "99999999999999999999",
        "é",
        "\x00",
        '"2026-13-45T99:99:99Z"',
        "9999h",
        "f(",
        " ",
        "  ",
    ]
)


@SETTINGS
@given(text=st.lists(_tokens, max_size=14).map(" ".join) | st.text(max_size=60) | filters.map(lambda f: f[:-3]))
def test_mangled_filters_are_refused_cleanly_or_run(specimens, text):
    try:
        compiled = SPEC.compile(text)
    except FilterError as e:
        assert e.code and e.message
        assert e.position is None or 0 <= e.position <= len(text)
        return
    list(Specimen.objects.filter(compiled.q).values_list("pk", flat=True))
    for s in specimens:
        compiled.matches(s.as_record())
