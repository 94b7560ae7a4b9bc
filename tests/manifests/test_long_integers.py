"""A YAML 1.1 base-60 integer (`1:59:59:…`) costs time quadratic in its length to convert: an
integer scalar past Python's digit limit is refused (or, a decimal, kept as written) before any
conversion, within the time hostile documents are held to (tests/manifests/test_hostile.py)."""

import time

from foundry.manifests import validate

LIMIT = 0.250  # as tests/manifests/test_hostile.py


def test_a_document_of_long_base_60_integers_is_refused_quickly():
    source = "".join(f"k{i}: 1" + ":59" * 33_000 + "\n" for i in range(10))  # just under 1 MiB
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        result = validate(source, "sexagesimal.yaml")
        timings.append(time.perf_counter() - started)
    assert "yaml_invalid_number" in {p.code for p in result.problems}
    assert min(timings) < LIMIT, f"{min(timings) * 1000:.0f} ms"
