"""Safe YAML: every problem the loader reports, with its exact code, line and column.

Each document goes through `validate()`, the one entry point of the server and the CLI.
"""

import itertools

import pytest

from foundry.manifests import DocumentError, loader, validate
from foundry.manifests.loader import MAX_BYTES, MAX_DEPTH, MAX_SCALAR, load
from tests.manifests.conftest import FINANCE, codes, found, found_one


def billion_laughs(levels: int = 9) -> str:
    """The classic: each level holds ten aliases of the one before, 10**levels strings once expanded."""
    names = "abcdefghijklmnop"
    lines = ["a: &a [" + ", ".join(["lol"] * 10) + "]"]
    for previous, name in itertools.pairwise(names[:levels]):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 10) + "]")
    return "\n".join(lines) + "\n"


# --- size and encoding ------------------------------------------------------------------------


def test_it_refuses_a_document_over_one_mebibyte():
    assert codes("a: " + "x" * MAX_BYTES) == [("yaml_too_large", 1, 1)]
    assert codes(b"a: " + b"x" * MAX_BYTES) == [("yaml_too_large", 1, 1)]


def test_it_counts_the_limit_in_bytes_not_characters():
    text = "a: " + "é" * (MAX_BYTES // 2)  # fewer characters than the limit, more bytes
    assert len(text) < MAX_BYTES
    assert codes(text) == [("yaml_too_large", 1, 1)]


def test_a_document_of_exactly_the_limit_is_read():
    padding = MAX_BYTES - len(FINANCE.encode()) - 3
    source = FINANCE + "# " + "x" * padding + "\n"
    assert len(source.encode()) == MAX_BYTES
    assert validate(source).ok


def test_it_refuses_bytes_that_are_not_utf8_at_their_line():
    assert codes(b"apiVersion: foundry/v1\nkind: Domain\nname: caf\xe9\n") == [("encoding_invalid", 3, 1)]
    assert codes("a: 1\n".encode("utf-16")) == [("encoding_invalid", 1, 1)]


def test_it_refuses_text_holding_lone_surrogates():
    assert codes("a: 1\nb: \ud800\n") == [("encoding_invalid", 2, 1)]


def test_it_reads_utf8_bytes_and_text_alike():
    assert validate(FINANCE.encode()).ok
    assert load("name: café\n".encode()).data == {"name": "café"}


# --- syntax -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "line", "column"),
    [
        ("a: b\n c: d\n", 2, 3),  # a mapping value where none may be
        ("a: [1, 2\nb: 3\n", 2, 2),  # an unclosed flow sequence
        ("a:\n\tb: c\n", 2, 1),  # a tab used for indentation
        ("a: 1\nb: *nowhere\n", 2, 4),  # an alias to no anchor
        ("a: 1\n---\nb: 2\n", 2, 1),  # a second document
        ("a: 'open\n", 2, 1),  # an unterminated quoted scalar
        ("a: 1\nb: x\x01y\n", 2, 5),  # a control character (a reader error: a byte offset in libyaml)
        ("a: é\nb: é\x7f\n", 2, 5),  # the same after multi-byte characters
    ],
)
def test_it_reports_invalid_yaml_where_it_is(source, line, column):
    result = validate(source, "domains/x.yaml")
    assert found_one(result) == ("yaml_syntax", line, column)
    assert result.problems[0].file == "domains/x.yaml"
    assert result.problems[0].message.endswith(".")


@pytest.mark.parametrize("source", ["", "   \n\n", "# only a comment\n", "\ufeff"])
def test_it_refuses_an_empty_document(source):
    assert codes(source) == [("yaml_empty", 1, 1)]


@pytest.mark.parametrize(
    ("source", "line"),
    [("- a\n- b\n", 1), ("just text\n", 1), ("# a list\n[1, 2]\n", 2), ("---\n~\n", 2), ("42\n", 1)],
)
def test_it_refuses_a_document_that_is_not_a_mapping(source, line):
    assert codes(source) == [("yaml_not_mapping", line, 1)]


# --- depth, aliases and size after expansion -------------------------------------------------


def test_it_refuses_flow_nesting_deeper_than_the_limit_at_the_first_level_too_deep():
    # The root mapping is level 0, `[` number n is level n, at column 3 + n.
    assert codes("a: " + "[" * (MAX_DEPTH + 6) + "]" * (MAX_DEPTH + 6)) == [("yaml_too_deep", 1, MAX_DEPTH + 4)]


def test_nesting_exactly_at_the_limit_is_read():
    expected: list = []
    for _ in range(MAX_DEPTH - 1):
        expected = [expected]
    assert load("a: " + "[" * MAX_DEPTH + "]" * MAX_DEPTH).data == {"a": expected}


def test_it_refuses_block_nesting_deeper_than_the_limit():
    # Line n holds the mapping at level n - 1; the key on line 65 is level 65.
    source = "".join("  " * i + "k:\n" for i in range(MAX_DEPTH + 10))
    assert codes(source) == [("yaml_too_deep", MAX_DEPTH + 1, 2 * MAX_DEPTH + 1)]


def test_libyaml_own_nesting_limit_is_a_syntax_problem():
    assert codes("a: " + "[" * 2000) == [("yaml_syntax", 1, 1003)]  # at the thousandth `[`
    assert codes("a:\n" + "- " * 2000 + "x\n") == [("yaml_syntax", 2, 1999)]


def test_it_refuses_an_alias_that_makes_nesting_too_deep_where_the_alias_is():
    shallow = "[" * 40 + "]" * 40  # 40 levels on its own: fine
    source = f"a: &deep {shallow}\nb: " + "[" * 30 + "*deep" + "]" * 30 + "\n"
    assert codes(source) == [("yaml_too_deep", 2, 33)]  # the innermost `[` of line 2, holding the alias


@pytest.mark.parametrize(
    ("source", "column"),
    [("a: &x [*x]\n", 4), ("a: &x {b: *x}\n", 4), ("a: &x {b: [c, *x]}\n", 11)],
)
def test_it_refuses_an_alias_to_a_value_containing_it(source, column):
    assert codes(source) == [("yaml_recursive_alias", 1, column)]


def test_it_refuses_a_billion_laughs_at_the_first_level_that_expands_too_far():
    # Level e expands to 111,111 values, over the limit: reported on its line, at its anchor.
    assert codes(billion_laughs()) == [("yaml_alias_expansion", 5, 4)]


def test_aliases_within_bounds_are_expanded():
    data = load("base: &base {type: string}\nfields:\n  a: *base\n  b: *base\n").data
    assert data["fields"] == {"a": {"type": "string"}, "b": {"type": "string"}}
    data["fields"]["a"]["type"] = "integer"  # each use is its own value
    assert data["fields"]["b"] == {"type": "string"}


def test_it_refuses_more_values_than_the_limit_without_reading_further(monkeypatch):
    monkeypatch.setattr(loader, "MAX_NODES", 1000)  # the real limit in the hostile-input tests
    items = 998  # with the root mapping, its key and the list: one more than the limit
    assert codes("a: [" + ",".join(["1"] * items) + "]") == [("yaml_too_large", 1, 1)]
    # Composing stops at the limit: what follows (here broken YAML) is never read.
    assert codes("a: [" + ",".join(["1"] * items) + ", 1]]]]") == [("yaml_too_large", 1, 1)]
    assert "yaml_too_large" not in str(codes("a: [" + ",".join(["1"] * (items - 1)) + "]"))


def test_explicitly_tagged_values_count_towards_the_limit_too(monkeypatch):
    # Values with an explicit tag are counted while composing, as untagged ones are: composing
    # stops at the limit (they were counted only once composed, so a document of them was read whole).
    monkeypatch.setattr(loader, "MAX_NODES", 1000)
    assert codes("a:\n  [" + ",".join(["!!str x"] * 1000) + "]\n") == [("yaml_too_large", 1, 1)]
    assert codes("a:\n  [" + ",".join(["!!str x"] * 1000) + ", !a x]]]]\n") == [("yaml_too_large", 1, 1)]


# --- tags, keys and values --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "tag"),
    [
        ("!!python/object/apply:os.system ['true']", "tag:yaml.org,2002:python/object/apply:os.system"),
        ("!!python/object:builtins.dict {}", "tag:yaml.org,2002:python/object:builtins.dict"),
        ("!!python/name:os.system ''", "tag:yaml.org,2002:python/name:os.system"),
        ("!!python/tuple [1, 2]", "tag:yaml.org,2002:python/tuple"),
        ("!foo bar", "!foo"),
        ("!<tag:example.com,2026:app> x", "tag:example.com,2026:app"),
        ("!!binary aGVsbG8=", "tag:yaml.org,2002:binary"),
        ("!!set {x, y}", "tag:yaml.org,2002:set"),
        ("!!omap [x: 1]", "tag:yaml.org,2002:omap"),
        ("!!pairs [x: 1]", "tag:yaml.org,2002:pairs"),
        ("!!map [x]", "tag:yaml.org,2002:map"),
    ],
)
def test_it_refuses_tags_outside_plain_data(value, tag):
    result = validate(f"apiVersion: foundry/v1\nvalue: {value}\n")
    assert found_one(result) == ("yaml_tag_forbidden", 2, 8)
    assert result.problems[0].message == f"Tag {tag!r} is not allowed."
    assert result.problems[0].path == "/value"


def test_a_python_tag_is_never_constructed(tmp_path):
    marker = tmp_path / "pwned"
    source = (
        f"a: !!python/object/apply:os.system ['touch {marker}']\nb: !!python/object/new:os.system ['touch {marker}']\n"
    )
    assert codes(source) == [("yaml_tag_forbidden", 1, 4), ("yaml_tag_forbidden", 2, 4)]
    assert not marker.exists()


def test_plain_data_tags_are_allowed():
    assert load("a: !!str 1\nb: !!int '7'\nc: !!float 2\nd: !!null ''\ne: !!bool true\n").data == {
        "a": "1",
        "b": 7,
        "c": 2.0,
        "d": None,
        "e": True,
    }


def test_it_refuses_merge_keys():
    assert codes("base: &b {x: 1}\nother:\n  <<: *b\n  y: 2\n") == [("yaml_merge_key", 3, 3)]


@pytest.mark.parametrize(
    ("source", "line", "column"),
    [("[a, b]: 1\n", 1, 1), ("? {a: 1}\n: 2\n", 1, 3), ("? [a]\n: 1\n", 1, 3), ("!!binary aGk=: 1\n", 1, 1)],
)
def test_it_refuses_keys_that_are_not_plain_strings(source, line, column):
    assert codes(source) == [("yaml_key_not_string", line, column)]


def test_keys_that_look_like_other_scalars_are_kept_as_written():
    assert load("1: a\ntrue: b\nnull: c\n2026-01-01: d\n").data == {
        "1": "a",
        "true": "b",
        "null": "c",
        "2026-01-01": "d",
    }


def test_it_refuses_a_duplicate_key_at_the_second_one():
    result = validate("a: 1\nb: 2\na: 3\n")
    assert found(result) == [("yaml_duplicate_key", 3, 1)]
    assert result.problems[0].message == "Duplicate key 'a' (first on line 1)."
    assert result.problems[0].path == "/a"


def test_it_refuses_duplicates_however_the_key_is_quoted_and_reports_each():
    source = "spec:\n  x: 1\n  \"x\": 2\n  y: 1\n  'y': 2\n  x: 3\n"
    assert codes(source) == [("yaml_duplicate_key", 3, 3), ("yaml_duplicate_key", 5, 3), ("yaml_duplicate_key", 6, 3)]


def test_it_refuses_a_value_longer_than_the_limit():
    assert codes("a: ok\nb: " + "x" * (MAX_SCALAR + 1) + "\n") == [("yaml_scalar_too_long", 2, 4)]
    assert load("a: " + "x" * MAX_SCALAR).data["a"] == "x" * MAX_SCALAR


@pytest.mark.parametrize("number", [".inf", "-.inf", "+.INF", ".nan", ".NaN", "1.0e+400"])
def test_it_refuses_infinity_and_nan(number):
    assert codes(f"limits:\n  max_steps: {number}\n") == [("yaml_invalid_number", 2, 14)]


def test_yes_no_on_and_off_stay_strings():
    data = load("a: yes\nb: no\nc: on\nd: off\ne: y\nf: n\ng: Yes\nh: NO\n").data
    assert data == {"a": "yes", "b": "no", "c": "on", "d": "off", "e": "y", "f": "n", "g": "Yes", "h": "NO"}


def test_true_and_false_are_booleans_and_other_scalars_keep_their_types():
    data = load("a: true\nb: False\nc: 12\nd: 1.5\ne: ~\nf: 2026-01-31\ng: '12'\nh: 0x10\n").data
    assert data == {"a": True, "b": False, "c": 12, "d": 1.5, "e": None, "f": "2026-01-31", "g": "12", "h": 16}


def test_a_huge_integer_is_kept_as_text_rather_than_converted():
    assert load("a: " + "9" * 5000).data["a"] == "9" * 5000  # over Python's int-from-text limit


# --- several problems, positions, and the exception -------------------------------------------


def test_it_reports_every_loader_problem_of_a_document_together():
    source = "a: !!binary aGk=\nb: 1\nb: 2\nc: .nan\n<<: {}\nd: !foo x\n"
    assert codes(source) == [
        ("yaml_tag_forbidden", 1, 4),
        ("yaml_duplicate_key", 3, 1),
        ("yaml_invalid_number", 4, 4),
        ("yaml_merge_key", 5, 1),
        ("yaml_tag_forbidden", 6, 4),
    ]


def test_load_raises_document_error_with_the_problems():
    with pytest.raises(DocumentError) as caught:
        load("a: 1\na: 2\n", "x.yaml")
    assert [str(p) for p in caught.value.problems] == [
        "x.yaml:2:1: yaml_duplicate_key: Duplicate key 'a' (first on line 1)."
    ]


def test_load_records_where_every_value_and_key_is():
    loaded = load("# comment\nspec:\n  tools:\n    - name: lookup\n      type: http\n")
    assert loaded.where(("spec",)) == (3, 3)
    assert loaded.where(("spec",), key=True) == (2, 1)
    assert loaded.where(("spec", "tools", 0, "name")) == (4, 13)
    assert loaded.where(("spec", "tools", 0, "name"), key=True) == (4, 7)
    assert loaded.where(("spec", "tools", 0, "missing")) == (4, 7)  # the nearest parent that exists
    assert loaded.where(("nowhere",)) == (2, 1)  # the root mapping


@pytest.mark.parametrize(
    "value", ["!!int", "!!int _", "!!int '-'", "!!float", "!!float abc", "0x" + "f" * 5000, "0b" + "1" * 20000]
)
def test_a_tagged_non_number_or_an_integer_too_long_to_print_is_a_problem(value):
    """An explicit tag on what is no number raised out of the loader; a hex, octal or binary
    integer escapes Python's digit limit and failed later, when printed (a 500 on publishing)."""
    assert codes(f"a: 1\nb: {value}\n") == [("yaml_invalid_number", 2, 4)]


def test_a_nul_written_as_an_escape_is_a_problem():
    """No text column or jsonb value takes a NUL: it failed when the version was stored."""
    assert codes('a: "x\\0y"\n"k\\0": 1\n') == [("yaml_text_invalid", 1, 4), ("yaml_text_invalid", 2, 1)]


@pytest.mark.parametrize(
    "value", ["020000", "-010", "0b101", "1_000", "1:30", "190:20:30", "1_000.5", "1:30.0", "!!int 010"]
)
def test_a_number_yaml_1_2_reads_otherwise_is_a_problem(value):
    """YAML 1.1 (libyaml's resolver) reads `020000` as octal 8192, `1_000` as 1000 and `1:30` as 90;
    the YAML 1.2 editors and schema validators people check a document with read 20000, and text:
    a limit set as `max_tokens: 020000` was 8192, not what the author saw. Refused, with where."""
    assert codes(f"a: 1\nb: {value}\n") == [("yaml_invalid_number", 2, 4)]


@pytest.mark.parametrize("value", ["1e-1", "1E5", "+.5", "-.5", "0o17", "1e400", "-1e3", "&n 1e-1", "&n\n  +.5"])
def test_text_yaml_1_2_reads_as_a_number_is_a_problem(value):
    """The other way round: YAML 1.1 reads `1e-1` (no dot), `+.5` and `0o17` as text, YAML 1.2 and
    JSON tools as 0.1, 0.5 and 15. `parameters: {frequency_penalty: 1e-1}` validated, the editor
    showed 0.1, and the provider was sent the string "1e-1". Refused, with where."""
    assert codes(f"a: 1\nb: {value}\n") == [("yaml_invalid_number", 2, 4)]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ('"1e-1"', "1e-1"),
        ("'0o17'", "0o17"),
        ("!!str 1e-1", "1e-1"),
        ("&n !!str +.5", "+.5"),
        ("! 1e-1", "1e-1"),
        ("!<tag:yaml.org,2002:str> 0o17", "0o17"),
        ("1e-1x", "1e-1x"),
        ("0o18", "0o18"),
        ("e5", "e5"),
        ("1e", "1e"),
    ],
)
def test_text_quoted_or_tagged_as_text_or_no_number_in_either_version_is_kept(value, text):
    assert load(f"a: {value}\n").data == {"a": text}


@pytest.mark.parametrize(
    ("value", "number"),
    [("0", 0), ("-0", 0), ("10", 10), ("0x10", 16), ("1.5", 1.5), ("0.5", 0.5), ("1.5E+3", 1500.0), (".5", 0.5)],
)
def test_a_number_both_yaml_versions_read_alike_is_kept(value, number):
    assert load(f"a: {value}\n").data == {"a": number}
