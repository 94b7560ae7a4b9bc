"""`bin/dev test` runs the suite in two phases; the first names the tests it leaves to the second."""

import os
import subprocess
import sys

from tests.api import test_noisy_neighbour
from tests.conftest import ROOT


def test_the_parallel_phase_names_every_test_marked_alone_and_no_other(tmp_path):
    listed = tmp_path / "alone-tests.txt"
    files = ["tests/api/test_noisy_neighbour.py", "tests/foundry/test_suite_phases.py"]
    collected = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", "-q", "-m", "not alone", *files],
        env={**os.environ, "FOUNDRY_TEST_ALONE_LIST": str(listed)},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert collected.returncode == 0, collected.stdout + collected.stderr
    marked = [
        f"{files[0]}::{name}"
        for name, test in vars(test_noisy_neighbour).items()
        if name.startswith("test_") and any(mark.name == "alone" for mark in getattr(test, "pytestmark", []))
    ]
    assert marked and listed.read_text().splitlines() == marked
    # And the phase itself collected the rest of the files, not those.
    assert f"{files[1]}::test_the_parallel_phase_names_every_test_marked_alone_and_no_other" in collected.stdout
    assert not any(nodeid in collected.stdout for nodeid in marked)
