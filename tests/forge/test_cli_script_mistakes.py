"""The forge CLI on inputs a script gets wrong (found by the forge bad-input review, each run
through the real `forge`): an empty --url or --token (an unset variable) is a usage error, not a
fall back to FOUNDRY_URL / FOUNDRY_TOKEN (deploy published to that server, or sent its token to the
URL given; validate went offline); `forge test` reads its manifest once (a pipe read twice was
"empty"); a -m message that is not UTF-8 is said as such, not as a bad URL; a file beside the
manifest holding another domain is named, not given as where to put the domain."""

import json
import os
import subprocess

import pytest

from tests.forge.conftest import FINANCE, FORGE, TRIAGE, Stub, forge, stub_serving


def _clean_env(extra: dict | None = None) -> dict:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("FOUNDRY_")}, **(extra or {})}


@pytest.fixture
def recorder():
    """A server that records every request (and refuses it): what forge sent, and where."""
    with stub_serving(otherwise=(401, b'{"error": {"code": "unauthenticated", "message": "no"}}')) as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def docs(tmp_path):
    (tmp_path / "domains").mkdir()
    (tmp_path / "agents").mkdir()
    (tmp_path / "domains/finance.yaml").write_text(FINANCE)
    (tmp_path / "agents/triage.yaml").write_text(TRIAGE)
    return tmp_path


# --- forge test reads its manifest twice --------------------------------------------------------


def test_forge_test_runs_a_manifest_given_on_a_pipe(docs):
    """`cat triage.yaml | forge test /dev/stdin` (or `forge test <(…)`): the manifest is read once.
    commands.run_manifest_tests reads it a second time, gets nothing from the drained pipe and
    reports `yaml_empty: The document is empty.` (exit 1) for a valid, non-empty manifest."""
    done = subprocess.run(
        [str(FORGE), "test", "/dev/stdin", "--domain", "domains/finance.yaml"],
        input=TRIAGE.encode(),
        cwd=docs,
        env=_clean_env(),
        capture_output=True,
        timeout=60,
    )
    out, err = done.stdout.decode(), done.stderr.decode()
    assert "Traceback" not in err, err
    assert "yaml_empty" not in out, out
    assert done.returncode == 0, (done.returncode, out, err)
    assert "PASS finds-the-invoice" in out, out


# --- an empty --url / --token falls back to FOUNDRY_URL / FOUNDRY_TOKEN ----------------------------


def test_deploy_with_an_empty_url_publishes_nothing_to_the_environment_url(docs, recorder):
    """`forge deploy --url "$STAGING_URL" …` with STAGING_URL unset must not deploy to FOUNDRY_URL
    (forge refuses an empty path and an empty -o for the same reason). cli._settings takes "" as
    absent and publishes to FOUNDRY_URL with FOUNDRY_TOKEN."""
    ran = forge("deploy", "--url", "", "domains/", cwd=docs, env={"FOUNDRY_URL": recorder, "FOUNDRY_TOKEN": "af_env"})
    assert Stub.seen == [], Stub.seen
    assert ran.code == 2, (ran.code, ran.out, ran.err)


def test_an_empty_token_does_not_send_the_environment_token_to_the_url_given(docs, recorder):
    """`forge deploy --url "$OTHER" --token "$OTHER_TOKEN"` with OTHER_TOKEN unset: FOUNDRY_TOKEN
    (another server's token) must not go to the URL named on the command line."""
    ran = forge(
        "deploy", "--url", recorder, "--token", "", "domains/", cwd=docs, env={"FOUNDRY_TOKEN": "af_of_another_host"}
    )
    assert [auth for _m, _p, auth in Stub.seen] == [], Stub.seen
    assert ran.code == 2, (ran.code, ran.out, ran.err)


def test_validate_with_an_empty_url_is_refused_not_silently_offline(docs):
    """docs/forge.md: with --url on the command line each file is validated by the server. An
    empty --url (a variable unset) silently validates offline and exits 0 — the CI job believes the
    files were checked against the tenant's published domains."""
    ran = forge("--json", "validate", "--url", "", "domains/", "agents/", cwd=docs)
    assert ran.code == 2, (ran.code, ran.out, ran.err)
    assert "error" in ran.json, ran.out


# --- a -m message that is not UTF-8 is reported as a bad URL --------------------------------------


def test_a_message_that_is_not_utf8_is_said_as_such_not_as_a_bad_url(docs, recorder):
    """`forge deploy -m "$(git log -1 --format=%s)"` with a Latin-1 subject: the error blames the
    URL (`url_invalid: http://… is not a URL forge can connect to.`), which is well-formed; client._send
    catches the UnicodeEncodeError of the JSON body as an IDNA failure of the host."""
    done = subprocess.run(
        [str(FORGE).encode(), b"--json", b"deploy", b"-m", b"Q3 r\xe8gles", b"domains/"],
        cwd=docs,
        env=_clean_env({"FOUNDRY_URL": recorder, "FOUNDRY_TOKEN": "af_t"}),
        capture_output=True,
        timeout=60,
    )
    assert "Traceback" not in done.stderr.decode(errors="replace")
    assert Stub.seen == []
    assert done.returncode == 2
    error = json.loads(done.stdout)["error"]
    assert error["code"] != "url_invalid", error
    assert "not a URL" not in error["message"], error


# --- forge test: a domain file where one is looked for, of another name ---------------------------


def test_forge_test_says_the_file_beside_it_defines_another_domain(docs):
    """../domains/finance.yaml exists but defines domain 'finance2': forge test answers "put it at
    ../domains/finance.yaml" (where a file already is), never saying what that file holds."""
    (docs / "domains/finance.yaml").write_text(FINANCE.replace("name: finance", "name: finance2"))
    ran = forge("test", "agents/triage.yaml", cwd=docs)
    assert ran.code in (1, 2), ran
    assert "finance2" in ran.err + ran.out, (ran.out, ran.err)
