"""A workspace always keeps at least one owner (docs/roles.md). An owner who was invited but has
never joined cannot sign in, and only owners may hand out an owner's invitation link: if the last
owner who can sign in steps down, nobody can ever act as owner again."""

from tests.conftest import client_for, tenant_user


def test_the_last_joined_owner_cannot_step_down_leaving_only_a_pending_owner(acme):
    owner_client = client_for(acme, "owner@acme.test")
    added = owner_client.post("/members/add/", {"email": "pending-owner@acme.test", "role": "owner"})
    assert added.status_code == 200
    pending = tenant_user(acme, "pending-owner@acme.test")
    assert pending.role == "owner" and not pending.has_joined

    owner = tenant_user(acme, "owner@acme.test")
    response = owner_client.post(f"/members/{owner.pk}/role/", {"role": "admin"})

    assert response.status_code == 400, "the only owner who can sign in stepped down"
    assert b"last_owner" in response.content
    assert tenant_user(acme, "owner@acme.test").role == "owner"
    # (Had it gone through: the former owner, now an admin, may not reissue the pending owner's
    # link — member_invite_reissue requires owners.manage — so no owner could ever sign in.)
