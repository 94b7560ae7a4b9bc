"""forge, run for real, refuses what would leak its token or act on part of what it was given:
plain http to another machine, a user name or password in the URL, a folder holding a file or a
subfolder it cannot read; a path it cannot examine is `file_unreadable`, not an internal error."""

import json
import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from foundry.forge.client import base_url
from tests.forge.conftest import FORGE, Stub, forge, stub_serving

TOKEN = "af_review_secret_token_0123456789"


def _non_loopback_address() -> str | None:
    """An address of this machine that is not loopback (the route a packet to the outside would take)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("198.51.100.1", 9))  # TEST-NET-2: a UDP connect sends nothing
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") or address == "0.0.0.0" else address


@pytest.fixture
def outside_stub():
    """A stub listening on every interface, reached through a non-loopback address of this machine."""
    address = _non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    refused = (401, b'{"error": {"code": "unauthenticated", "message": "no"}}')  # whatever is asked
    with stub_serving("0.0.0.0", otherwise=refused) as port:
        yield f"http://{address}:{port}"


# --- plain http only to this machine ------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ("deploy", "domains/finance.yaml", "agents/triage.yaml"),
        ("validate", "--url", "{url}", "domains/finance.yaml"),
        ("pull", "agent:triage@1"),
        ("diff", "domain:finance@1", "domain:finance@2"),
    ],
    ids=lambda c: c[0],
)
def test_the_token_is_not_sent_over_plain_http_to_a_host_that_is_not_loopback(outside_stub, workspace, command):
    """Plain http would carry the token (read/write) across the network in clear text, as a typo
    of https would: refused before anything is sent (exit 2, asking for https), except to
    loopback (localhost, *.localhost, 127.0.0.0/8, ::1), as the platform refuses provider keys
    over plain http to a public address."""
    args = [arg.replace("{url}", outside_stub) for arg in command]
    ran = forge(*args, cwd=workspace, env={"FOUNDRY_URL": outside_stub, "FOUNDRY_TOKEN": TOKEN})
    assert Stub.seen == []
    assert ran.code == 2, (ran.code, ran.out, ran.err)
    assert "https" in ran.err, ran.err


def test_a_url_holding_a_user_name_or_password_is_refused_without_echoing_it(workspace):
    """`--url http://git:af_TOKEN@host` (the git clone form) would send Basic credentials instead
    of the token and print the secret in every error: refused, the URL not repeated."""
    url = f"http://git:{TOKEN}@acme.localhost:1"
    ran = forge("validate", "--url", url, "domains/finance.yaml", cwd=workspace, env={"FOUNDRY_TOKEN": "af_other"})
    assert ran.code == 2, (ran.code, ran.out, ran.err)
    assert "user name or password" in ran.err and TOKEN not in ran.err + ran.out


# --- a folder's files are all read, or nothing is done -------------------------------------------


def test_validate_does_not_call_a_folder_valid_when_one_of_its_yaml_files_cannot_be_read(workspace):
    """A dangling symbolic link among a folder's *.yaml files (a part of a monorepo not checked
    out) is "Cannot read", exit 2, as when it is named directly: never "1 file valid."."""
    (workspace / "agents/triage.yaml").unlink()
    (workspace / "agents/triage.yaml").symlink_to("../../shared/triage.yaml")  # not there
    ran = forge("validate", ".", cwd=workspace)
    assert ran.code == 2, (ran.code, ran.out, ran.err)
    assert "agents/triage.yaml" in ran.err, ran.err


def test_deploy_does_not_report_success_when_a_file_of_the_folder_cannot_be_read(server, workspace):
    """The same on the command that changes things: nothing is published (docs/forge.md:
    "nothing is sent if a file has problems"), not the rest without the unreadable agent."""
    (workspace / "agents/triage.yaml").unlink()
    (workspace / "agents/triage.yaml").symlink_to("../../shared/triage.yaml")
    ran = server.forge("deploy", ".", cwd=workspace)
    published = server.api("GET", "domains").json()
    assert ran.code == 2, (ran.code, ran.out, ran.err)
    assert not published.get("domains", published.get("results")), published


def _drop_read_override() -> list[str] | None:
    """A command prefix that makes root subject to file permissions (else None: not possible)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search"]


def _run(prefix: list[str], *args: str, cwd: Path) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FOUNDRY_")}
    return subprocess.run([*prefix, str(FORGE), *args], cwd=cwd, env=clean, capture_output=True, timeout=60)


def test_validate_does_not_skip_a_subfolder_it_cannot_list(workspace):
    """A subfolder forge may not list (another owner, mode 700) is an error naming it, not skipped
    with the folder reported valid."""
    prefix = _drop_read_override()
    if prefix is None:
        pytest.skip("running as root without setpriv: permissions cannot be enforced")
    agents = workspace / "agents"
    if os.geteuid() == 0:
        os.chown(agents, 1, 1)  # another owner, mode 700: root without DAC override may not list it
    agents.chmod(0o700 if os.geteuid() == 0 else 0o000)
    try:
        done = _run(prefix, "validate", ".", cwd=workspace)
    finally:
        agents.chmod(0o755)
    out, err = done.stdout.decode(), done.stderr.decode()
    assert done.returncode == 2, (done.returncode, out, err)
    assert "agents" in err, err


# --- a path that cannot be examined ------------------------------------------------------------


def test_a_path_that_cannot_be_examined_is_file_unreadable_not_an_internal_error(workspace):
    """A path whose examination fails for another reason than "not found" (a name too long, a
    folder on the way that may not be searched) is `file_unreadable` ("Cannot read PATH: ..."),
    for validate (a folder or a file?) and diff (a file or a published version?) alike."""
    long_name = "a" * 300 + ".yaml"
    for args in (("validate", long_name), ("diff", long_name, "domains/finance.yaml")):
        ran = forge("--json", *args, cwd=workspace)
        assert ran.code == 2, (args, ran.code, ran.out, ran.err)
        error = json.loads(ran.out)["error"]
        assert error["code"] == "file_unreadable", (args, error)
        assert "Unexpected" not in ran.err, ran.err


def test_hidden_files_of_a_folder_are_not_collected(workspace):
    """An editor's lock file (Emacs's `.#triage.yaml`, a link that never resolves) or a hidden
    draft beside the documents is skipped, as hidden folders are: validate passes, and deploy
    would not publish the draft."""
    (workspace / "agents/.#triage.yaml").symlink_to("ada@laptop.4242:1700000000")
    (workspace / "agents/.draft.yaml").write_text("kind: scratch\n")
    ran = forge("validate", ".", cwd=workspace)
    assert ran.code == 0, (ran.code, ran.out, ran.err)
    assert ".draft" not in ran.out and ".#triage" not in ran.out + ran.err


@pytest.mark.parametrize("url", ["http://localhost.:8000", "http://acme.localhost.:8000", "http://[::1]:8000"])
def test_this_machine_by_any_of_its_names_takes_plain_http(url):
    """`localhost.` (the fully qualified form) is as much this machine as `localhost`, as the
    platform itself drops a host's trailing dot."""
    assert base_url(url) == url


def test_an_unknown_agent_is_named_in_the_error(server):
    """`forge migrate` (and deploy, rollback) of a mistyped name says which agent does not exist
    (the API answers `agent_not_found` naming it), not a bare "Not found."."""
    ran = server.forge("migrate", "invoice-triag")
    assert ran.code == 2
    assert "no agent named 'invoice-triag'" in ran.err, ran.err
