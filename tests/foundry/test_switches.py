"""Yes/no settings and the log streams, as README.md ("Configuration") and docs/observability.md
("Logs") say: a yes/no setting takes 1/0, true/false, yes/no, on/off (empty: its default) and any
other value stops the process at start (foundry/switches.py, for settings.py and gunicorn's
config alike). Found by a review of the docs: FOUNDRY_TRACE_TRUST_CALLERS took any unknown word
as off, FOUNDRY_ACCESS_LOG was on only for the text "1", and the docs sent gunicorn's access
lines to stderr."""

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _settings_import(**env: str) -> subprocess.CompletedProcess:
    """Import foundry.settings in a fresh interpreter with these variables set."""
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "foundry.settings", **env}
    return subprocess.run(
        [sys.executable, "-c", "import foundry.settings as s; print(repr(s.FOUNDRY_TRACE_TRUST_CALLERS))"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _gunicorn_accesslog(value: str | None) -> object:
    """The `accesslog` foundry/gunicorn.conf.py gives gunicorn with FOUNDRY_ACCESS_LOG=value."""
    environment = dict(os.environ)
    environment.pop("FOUNDRY_ACCESS_LOG", None)
    if value is not None:
        environment["FOUNDRY_ACCESS_LOG"] = value
    code = "import runpy; print(repr(runpy.run_path('foundry/gunicorn.conf.py')['accesslog']))"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return ast.literal_eval(done.stdout.strip())


def test_a_mistyped_trace_trust_callers_stops_the_process_as_the_readme_says():
    """FOUNDRY_TRACE_TRUST_CALLERS=enabled stops the settings from loading, naming the variable."""
    done = _settings_import(FOUNDRY_TRACE_TRUST_CALLERS="enabled")
    assert done.returncode != 0 and "FOUNDRY_TRACE_TRUST_CALLERS" in done.stderr, (
        f"settings loaded with FOUNDRY_TRACE_TRUST_CALLERS='enabled' -> {done.stdout.strip()}"
    )


@pytest.mark.parametrize("value", ["true", "yes", "on", ""])
def test_the_access_log_takes_every_documented_spelling_of_on(value):
    """Every spelling of yes, and empty (compose passes an unset variable so), keeps the access log on."""
    assert _gunicorn_accesslog(value) == "-", f"FOUNDRY_ACCESS_LOG={value!r} turned the access log off"


def test_a_mistyped_access_log_value_stops_gunicorn_as_the_readme_says():
    """FOUNDRY_ACCESS_LOG=enabled stops gunicorn's config from loading."""
    environment = {**os.environ, "FOUNDRY_ACCESS_LOG": "enabled"}
    code = "import runpy; runpy.run_path('foundry/gunicorn.conf.py')"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0, "FOUNDRY_ACCESS_LOG=enabled was accepted (as off)"


def test_observability_doc_names_the_stream_gunicorn_access_lines_go_to():
    """The stream the docs name for gunicorn's access lines is the one its logger writes them to."""
    from gunicorn.config import Config

    from foundry.gunicorn_logging import Logger

    text = (ROOT / "docs" / "observability.md").read_text()
    logs = text.split("## Logs", 1)[1].split("\n## ", 1)[0]
    claim = re.search(r"gunicorn's access lines, which go to\s+(stdout|stderr)", logs)
    assert claim, "docs/observability.md no longer says where the log lines go"
    cfg = Config()
    cfg.set("accesslog", "-")
    logger = Logger(cfg)
    streams = {getattr(h, "stream", None) for h in logger.access_log.handlers}
    actual = "stdout" if sys.stdout in streams else "stderr" if sys.stderr in streams else repr(streams)
    assert claim.group(1) == actual, (
        f"docs/observability.md says gunicorn's lines (access lines included) go to {claim.group(1)}; "
        f"the access log goes to {actual}"
    )
