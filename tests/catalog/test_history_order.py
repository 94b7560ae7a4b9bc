"""The git history follows the order versions were committed in, not the clock of the node that served each."""

from datetime import timedelta
from unittest import mock

from django.utils import timezone
from django_tenants.utils import schema_context

from apps.catalog.history import history_build
from apps.catalog.models import Version
from tests.catalog.conftest import example, publish


def test_a_version_committed_later_on_a_node_whose_clock_is_behind_does_not_rewrite_fetched_history(acme, finance):
    """A publish served by a node whose clock is minutes behind (or after an NTP step back) is
    a new commit on top of the history clients fetched: their tags stay where they were, and
    `main` moves forward (commits follow the ids handed out under the catalog's lock)."""
    with schema_context(acme.schema_name):
        before = history_build()
    fetched = before.refs.as_dict()

    behind = timezone.now() - timedelta(minutes=5)  # the clock of the node serving the next publish
    field = Version._meta.get_field("created_at")
    changed = example("domains/finance.yaml").replace("    AP:", "    PO: Purchase order.\n    AP:")
    with mock.patch.object(field, "_get_default", lambda: behind):
        publish(acme, changed, message="Add PO")

    with schema_context(acme.schema_name):
        after = history_build()
    refs = after.refs.as_dict()
    for tag in (b"refs/tags/dis/finance/v1", b"refs/tags/agent/invoice-triage/v1"):
        assert refs[tag] == fetched[tag], f"{tag.decode()} moved"
    head = after[refs[b"refs/heads/main"]]
    assert head.parents == [fetched[b"refs/heads/main"]], "the new version is not a commit on top of the fetched main"
