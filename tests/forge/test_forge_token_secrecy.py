"""forge never repeats an API token it was given, whichever setting it arrived in."""

import pytest

from tests.forge.conftest import forge

# The shape apps/tokens/services.py issues (af_<12 prefix chars>_<43 secret chars>).
TOKEN = "af_0123456789ab_" + "S3cretS3cretS3cretS3cretS3cretS3cretS3cret1"


@pytest.mark.parametrize(
    "how",
    [
        # FOUNDRY_URL and FOUNDRY_TOKEN swapped in a CI job's settings.
        {"env": {"FOUNDRY_URL": TOKEN, "FOUNDRY_TOKEN": "https://acme.foundry.example"}, "args": []},
        # `--url "$FOUNDRY_TOKEN"`: the wrong variable given to --url.
        {"env": {"FOUNDRY_TOKEN": TOKEN}, "args": ["--url", TOKEN]},
    ],
    ids=["variables-swapped", "token-given-as-url"],
)
def test_a_token_given_where_the_url_goes_is_not_printed(how):
    """A token that ends up where the URL goes (FOUNDRY_URL and FOUNDRY_TOKEN swapped in a CI
    job's settings, or `--url "$FOUNDRY_TOKEN"`) was repeated whole in the error, on stderr and in
    the --json document — straight into CI logs (found by the forge review). It is refused
    (url_invalid, exit 2) without repeating the value, as a URL's password and query are not."""
    ran = forge("--json", "pull", "triage@1", *how["args"], env=how["env"])
    assert ran.code == 2, ran.err
    assert ran.json["error"]["code"] == "url_invalid", ran.out
    assert TOKEN[16:] not in ran.err, ran.err
    assert TOKEN[16:] not in ran.out, ran.out
