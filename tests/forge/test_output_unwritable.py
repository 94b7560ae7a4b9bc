"""forge with a stdout that goes away or cannot be written: one line at most, never a traceback."""

import os
import subprocess

from tests.conftest import ROOT
from tests.forge.conftest import EXAMPLES, FORGE


def _run_with_closed_pipe(*args: str) -> subprocess.CompletedProcess:
    """`forge ARGS | head -0`: the reader of stdout is gone before forge writes."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FOUNDRY_")}
    try:
        return subprocess.run(
            [str(FORGE), *args], stdout=write_end, stderr=subprocess.PIPE, cwd=ROOT, env=clean, timeout=120
        )
    finally:
        os.close(write_end)


def test_json_error_with_the_reader_gone_is_no_traceback(tmp_path):
    """`forge --json validate missing.yaml | head -0`: docs/forge.md (Output/Exit codes) — errors
    are one line, never a traceback, even when the `{"error": ...}` document cannot be written
    because stdout's reader went away."""
    done = _run_with_closed_pipe("--json", "validate", str(tmp_path / "missing.yaml"))
    err = done.stderr.decode()
    assert "Traceback" not in err, err
    assert done.returncode == 2, (done.returncode, err)


def test_json_error_on_a_full_disk_is_no_traceback(tmp_path):
    """`forge --json validate missing.yaml > /dev/full`: the error document cannot be written;
    forge must still end with one line on stderr, not a traceback (docs/forge.md: never a
    traceback)."""
    with open("/dev/full", "wb") as full:
        done = subprocess.run(
            [str(FORGE), "--json", "validate", str(tmp_path / "missing.yaml")],
            stdout=full,
            stderr=subprocess.PIPE,
            cwd=ROOT,
            timeout=120,
        )
    err = done.stderr.decode()
    assert "Traceback" not in err, err
    assert done.returncode == 2, (done.returncode, err)


def test_forge_test_with_the_reader_gone_does_not_claim_the_tests_could_not_run():
    """`forge test examples/agents/invoice-triage.yaml | head -0`: the tests run and pass; only
    the reader of stdout left. That is not reported as the runtime's failure ("The tests could
    not run: BrokenPipeError"): forge says nothing more, as for any reader that went away."""
    done = _run_with_closed_pipe("test", str(EXAMPLES / "agents" / "invoice-triage.yaml"))
    err = done.stderr.decode()
    assert "Traceback" not in err, err
    assert "could not run" not in err, err
    assert "BrokenPipeError" not in err, err


def test_forge_started_with_stdout_closed_says_nothing_and_does_its_work():
    """`forge validate file >&-`: Python has no sys.stdout at all; forge validates and ends as it
    would (exit 0 for a valid file), with no "Unexpected AttributeError" about the missing stream."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FOUNDRY_")}
    manifest = EXAMPLES / "domains" / "finance.yaml"
    done = subprocess.run(
        ["bash", "-c", f'"{FORGE}" validate "{manifest}" >&-'], capture_output=True, cwd=ROOT, env=clean, timeout=120
    )
    assert (done.returncode, done.stderr.decode()) == (0, "")


def test_a_valid_file_with_the_reader_gone_does_not_exit_as_invalid():
    """`forge validate valid.yaml | head -0`: exit status 1 means "invalid" (docs/forge.md); a
    reader that went away is not that. click ends a command whose pipe broke with 1 itself, before
    forge's own handler (nothing more said, status 2) could run."""
    done = _run_with_closed_pipe("validate", str(EXAMPLES / "domains" / "finance.yaml"))
    assert (done.returncode, done.stderr.decode()) == (2, "")
