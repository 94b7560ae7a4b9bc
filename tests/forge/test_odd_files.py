"""forge with odd files on disk: a huge file is refused unread, a name that is no UTF-8 keeps
--json output valid, a pinned domain file that does not load is reported with its line."""

import json
import os
import resource
import subprocess

import pytest

from tests.forge.conftest import FINANCE, FORGE, TRIAGE, forge


def _clean_env() -> dict:
    return {k: v for k, v in os.environ.items() if not k.startswith("FOUNDRY_")}


def test_forge_test_reports_a_syntax_error_in_the_pinned_domain_file_with_its_line(tmp_path):
    (tmp_path / "domains").mkdir()
    (tmp_path / "agents").mkdir()
    (tmp_path / "domains/finance.yaml").write_text(FINANCE.replace("when: amount > 10000", "when: [amount > 10000"))
    (tmp_path / "agents/triage.yaml").write_text(TRIAGE)
    ran = forge("test", "agents/triage.yaml", "--domain", "domains/finance.yaml", cwd=tmp_path)
    assert ran.code == 1, (ran.code, ran.out, ran.err)  # got 2: "None of the --domain files is the domain 'finance'"
    assert ran.lines[0].startswith("domains/finance.yaml:") and "yaml_syntax" in ran.lines[0], ran.out


def test_forge_test_does_not_tell_to_put_the_domain_where_it_already_is(tmp_path):
    (tmp_path / "domains").mkdir()
    (tmp_path / "agents").mkdir()
    (tmp_path / "domains/finance.yaml").write_text(FINANCE.replace("when: amount > 10000", "when: [amount > 10000"))
    (tmp_path / "agents/triage.yaml").write_text(TRIAGE)
    ran = forge("test", "agents/triage.yaml", cwd=tmp_path)
    assert (ran.code, "yaml_syntax" in ran.out) == (1, True), (ran.code, ran.out, ran.err)


def test_json_output_is_utf8_even_for_a_file_name_that_is_not(tmp_path):
    name = b"bad\xff.yaml"
    (tmp_path / os.fsdecode(name)).write_text(FINANCE)
    done = subprocess.run(
        [str(FORGE).encode(), b"--json", b"validate", name], cwd=tmp_path, env=_clean_env(), capture_output=True
    )
    assert done.returncode == 0, done.stderr
    json.loads(done.stdout.decode("utf-8"))


def test_a_huge_file_is_refused_as_too_large_without_reading_it_all(tmp_path):
    big = tmp_path / "big.yaml"
    with open(big, "wb") as f:
        f.truncate(1536 * 1024 * 1024)  # sparse: no disk used
    limit = 1024 * 1024 * 1024

    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    done = subprocess.run(
        [str(FORGE), "--json", "validate", "big.yaml"],
        cwd=tmp_path,
        env=_clean_env(),
        capture_output=True,
        preexec_fn=cap,
        timeout=120,
    )
    body = json.loads(done.stdout)
    assert done.returncode == 1, body
    assert body["files"][0]["problems"][0]["code"] == "yaml_too_large"


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("pull", "agent:x@1", "--url", "http://acme.localhost:1", "--token", "t\u00f6"), "is printable ASCII"),
        (("pull", "agent:x@1", "--url", "http://xn--.localhost:1", "--token", "af_x"), "is not a URL"),
        (("mcp", "--url", "http://acme.localhost:1/mcp", "--token", " "), "'--token': Empty"),
    ],
    ids=["token_not_ascii", "host_not_idna", "token_blank"],
)
def test_odd_credentials_are_said_plainly(args, said):
    ran = forge(*args)
    assert (ran.code, ran.out) == (2, ""), ran
    assert said in ran.err and "Unexpected" not in ran.err, ran.err
