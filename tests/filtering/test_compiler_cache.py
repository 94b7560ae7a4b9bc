"""A filter spec keeps only short filters compiled (foundry/filtering/compiler.py MAX_CACHED_CHARS):
a compiled filter takes ~50x its text, so 1,024 cached 4 KB filters — any reader's `?filter=`
values — kept ~200 MiB per spec in every web process (caches review)."""

from foundry.filtering.compiler import MAX_CACHED_CHARS, FilterSpec
from foundry.filtering.fields import StringField


def _spec() -> FilterSpec:
    return FilterSpec({"name": StringField()}, cache_size=8)


def test_short_filters_are_kept_compiled():
    spec = _spec()
    first = spec.compile('name = "a"')
    assert spec.compile('name = "a"') is first
    assert spec.cache_info().currsize == 1


def test_long_filters_are_compiled_at_each_use_and_not_kept():
    spec = _spec()
    text = " OR ".join(f'name = "n{i}"' for i in range(100))
    assert len(text) > MAX_CACHED_CHARS
    first, second = spec.compile(text), spec.compile(text)
    assert first is not second and first.text == second.text == text
    assert spec.cache_info().currsize == 0
    assert first.matches({"name": "n99"}) and not first.matches({"name": "x"})


def test_unbounded_callers_keep_nothing():
    spec = _spec()
    spec.compile_uncached('name = "a"')
    assert spec.cache_info().currsize == 0
