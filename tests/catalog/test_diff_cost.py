"""The text diff of two versions stays cheap: any viewer may ask for it (patience diff, not
difflib's quadratic matcher)."""

import time

from tests.api.conftest import api, issue
from tests.catalog.conftest import example, publish

FINANCE = example("domains/finance.yaml")
LINES = 12_000  # ~90 KB of comments, every other line changed; documents may be 1 MiB


def test_a_diff_of_two_large_versions_changed_on_every_other_line_is_quick(acme):
    old = FINANCE + "".join(f"# {i}\n" for i in range(LINES))
    new = FINANCE.replace("    AP:", "    PO: Purchase order.\n    AP:")
    new += "".join(f"# {i if i % 2 else -i}\n" for i in range(LINES))
    assert publish(acme, old).version.number == 1
    assert publish(acme, new).version.number == 2
    viewer = api(acme, issue(acme, role="viewer", scopes=("read",)))
    started = time.monotonic()
    response = viewer.get("/api/v1/domains/finance/diff?from=1&to=2")
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert elapsed < 3, f"the diff took {elapsed:.1f} s (difflib: >10 s)"
    text = response.json()["text"]
    assert "+    PO: Purchase order.\n" in text and "-# 2\n+# -2\n" in text
