"""A list endpoint's compiled filters are kept per spec (FilterSpec: 1,024 per spec, up to
MAX_CACHED_CHARS each, in every web process), and any reader can fill that cache with distinct
`?filter=` values. A cached filter whose Q was read keeps its Q and its predicate, not also the
tree of closures that built the Q (`Deferred`): that tree doubled a full cache's memory."""

import gc
import tracemalloc

from foundry.filtering import FilterSpec, IntegerField


def _texts(n: int) -> list[str]:
    """n distinct filters of just under 256 characters (kept compiled), as `?filter=seq = 1 OR ...`."""
    texts = []
    for k in range(n):
        text = " OR ".join(f"seq = {k * 1000 + i}" for i in range(100))[:256]
        texts.append(text[: text.rfind(" OR ")])
    return texts


def _retained(make) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = make()
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    del kept
    return grown


def _spec() -> FilterSpec:
    spec = FilterSpec({"seq": IntegerField()}, cache_size=1024)
    _ = spec.compile("seq = 1").q  # whatever a first compile and Q set up once per process
    _ = spec.compile_uncached("seq = 2").matches
    return spec


def test_a_cached_filter_whose_q_was_read_keeps_no_more_than_its_q_and_its_predicate():
    """What a cached filter keeps once its Q was read is about its Q and its predicate (x1); with
    the tree that built the Q kept too it was x2.06 (~11 -> ~23 MiB for a full cache of such
    filters, per spec and process)."""
    texts = _texts(256)

    cache_spec = _spec()
    cached = _retained(lambda: [cache_spec.compile(t).q for t in texts] and None)  # kept by the spec's cache
    assert cache_spec.cache_info().currsize == len(texts) + 1

    q_spec, p_spec = _spec(), _spec()
    q_alone = _retained(lambda: [q_spec.compile_uncached(t).q for t in texts])
    predicates_alone = _retained(lambda: [p_spec.compile_uncached(t).matches for t in texts])

    ratio = cached / (q_alone + predicates_alone)
    assert ratio < 1.25, (
        f"a cache of {len(texts)} filters keeps {cached / 1024:.0f} KiB; their Qs and predicates alone "
        f"{(q_alone + predicates_alone) / 1024:.0f} KiB (x{ratio:.2f})"
    )
