"""forge finds a manifest's pinned domain next to it (docs/forge.md): a folder it may not search is
an unreadable file like any other, never an internal error."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.forge.conftest import FINANCE, FORGE, TRIAGE


def _unprivileged() -> list[str] | None:
    """A command prefix under which root is subject to file permissions (None: not possible)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    return None if setpriv is None else [setpriv, "--bounding-set=-dac_override,-dac_read_search"]


def test_forge_test_with_an_unsearchable_domains_folder_is_file_unreadable_not_an_internal_error(tmp_path: Path):
    """`forge test agents/triage.yaml` looks for the pinned domain at ../domains/finance.yaml
    (docs/forge.md). When that folder exists but may not be searched (another owner, mode 700),
    the failure must be the usual one-line `file_unreadable` naming the path, exit 2 (docs/forge.md,
    "Exit codes": unreadable file), like validate and diff do for the same folder — not
    `internal_error: Unexpected PermissionError`."""
    prefix = _unprivileged()
    if prefix is None:
        pytest.skip("running as root without setpriv: permissions cannot be enforced")
    (tmp_path / "domains").mkdir()
    (tmp_path / "agents").mkdir()
    (tmp_path / "domains/finance.yaml").write_text(FINANCE)
    (tmp_path / "agents/triage.yaml").write_text(TRIAGE)
    domains = tmp_path / "domains"
    if os.geteuid() == 0:
        os.chown(domains, 1, 1)
    domains.chmod(0o700 if os.geteuid() == 0 else 0o000)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOUNDRY_")}
    try:
        done = subprocess.run(
            [*prefix, str(FORGE), "--json", "test", "agents/triage.yaml"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            timeout=120,
        )
    finally:
        domains.chmod(0o755)
    out, err = done.stdout.decode(), done.stderr.decode()
    assert done.returncode == 2, (done.returncode, out, err)
    assert "Unexpected" not in err, err
    error = json.loads(out)["error"]
    assert error["code"] == "file_unreadable", error
    assert "domains/finance.yaml" in error["message"], error
