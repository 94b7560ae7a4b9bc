"""An internationalised email domain can be allowed for single sign-on in either spelling
(`bücher.test`, `xn--bcher-kva.test`): it is stored as members' addresses spell it (U-labels,
accounts' `domain_spelling`), so its verified addresses are admitted."""

import pytest
from django.core.exceptions import ValidationError

from apps.identity.login import SsoLoginFailed, claims_email
from tests.identity.conftest import configure, idp, loopback_allowed  # noqa: F401 - fixtures
from tests.providers.conftest import encryption_key  # noqa: F401 - autouse

pytestmark = pytest.mark.usefixtures("loopback_allowed")


@pytest.mark.parametrize("spelling", ["bücher.test", "xn--bcher-kva.test"])
def test_an_idn_domain_can_be_allowed_and_admits_its_verified_addresses(acme, idp, spelling):  # noqa: F811
    try:
        config = configure(acme, idp, allowed_domains=[spelling])
    except ValidationError as exc:
        pytest.fail(f"allowed domain {spelling!r} refused: {exc}")
    for address in ("ada@bücher.test", "ada@xn--bcher-kva.test"):
        try:
            assert claims_email(config, {"email": address, "email_verified": True}) == "ada@bücher.test"
        except SsoLoginFailed as exc:
            pytest.fail(f"{address} refused with allowed_domains={config.allowed_domains}: {exc.code}")
