"""OPTIONS on an API view without GET (a POST-only action) answers whoever may use one of the
view's methods, and refuses anyone else as those methods would — recorded as `access.denied`
like every other refusal (docs/audit.md). A view with GET keeps GET's rule."""

from apps.accounts.permissions import Role
from tests.api.conftest import api, issue
from tests.audit.watch import Watch, describe


def test_options_on_a_post_only_view_answers_a_token_that_may_post(acme):
    token = issue(acme, role=Role.OWNER, scopes=("read", "write", "run", "admin"))
    response = api(acme, token).options("/api/v1/validate")
    assert response.status_code == 200
    assert "POST" in response["Allow"]


def test_options_on_a_post_only_view_refuses_a_token_that_may_not_and_records_it(acme):
    token = issue(acme, role=Role.DEVELOPER, scopes=("read",))
    watch = Watch("acme")
    response = api(acme, token).options("/api/v1/members/erase")  # members.manage + admin
    assert response.status_code == 403
    new = watch.new("acme")
    denied = [e for e in new if e.action == "access.denied"]
    assert len(denied) == 1, describe(new)
    assert denied[0].outcome == "denied"


def test_options_without_credentials_is_unauthenticated(acme):
    response = api(acme, None).options("/api/v1/members/erase")
    assert response.status_code == 401


def test_options_with_another_workspaces_token_is_refused(acme, globex):
    token = issue(globex, role=Role.OWNER, scopes=("read", "write", "run", "admin"))
    response = api(acme, token).options("/api/v1/validate")
    assert response.status_code == 401
