"""`forge pull -o FILE`: FILE is written whole or not at all."""

import os
import resource
import signal
import subprocess

from tests.forge.conftest import FINANCE, FORGE, server  # noqa: F401 — fixture


def _limited_file_size(limit: int):
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_a_pull_that_fails_to_write_leaves_the_earlier_file_whole(server, tmp_path):  # noqa: F811
    """`pull -o FILE` writes a file beside FILE and renames it over FILE once whole. Written in
    place, a write failing part way (a full disk, a quota, here a file size limit) left FILE
    holding the new source's first bytes: the earlier file, local edits and all, was gone. Found by
    a review."""
    server.publish("domain", FINANCE)
    target = tmp_path / "finance.yaml"
    earlier = "# my local edit, not yet deployed\n" + FINANCE
    target.write_text(earlier)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FOUNDRY_")}
    done = subprocess.run(
        [str(FORGE), "pull", "domain:finance@1", "-o", str(target)],
        cwd=tmp_path,
        env={**clean, "FOUNDRY_URL": server.url, "FOUNDRY_TOKEN": server.token, "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        timeout=60,
        preexec_fn=_limited_file_size(100),
    )
    assert done.returncode == 2, done.stderr  # the failure is reported ...
    assert b"Cannot write" in done.stderr, done.stderr
    assert target.read_text() == earlier, f"left behind: {target.read_bytes()!r}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["finance.yaml"]  # no temporary file left


def test_the_whole_file_keeps_its_mode_and_a_link_to_it_stays_a_link(tmp_path):
    from foundry.forge.cli import _write_whole

    real = tmp_path / "real.yaml"
    real.write_text("old\n")
    real.chmod(0o640)
    link = tmp_path / "link.yaml"
    link.symlink_to(real)
    _write_whole(link, b"new\n")
    assert link.is_symlink() and real.read_bytes() == b"new\n"
    assert real.stat().st_mode & 0o7777 == 0o640
    fresh = tmp_path / "fresh.yaml"
    _write_whole(fresh, b"x\n")
    assert fresh.read_bytes() == b"x\n" and fresh.stat().st_mode & 0o7777 == 0o666 & ~_umask_now()


def _umask_now() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
