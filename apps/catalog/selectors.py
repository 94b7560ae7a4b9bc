"""Read paths shared by the API and MCP."""

from django.db.models import QuerySet

from apps.catalog.models import Document

# A version's YAML and parsed content can be large; lists show neither.
_HEAVY = ("source", "content")


def without_version_bodies(queryset: QuerySet, *versions: str) -> QuerySet:
    """`queryset` not loading the YAML and parsed content of the versions at these relation paths
    ("" for the queryset's own rows when they are versions): each may be 1 MiB, and a list or a
    page shows a version's number, never its body (selected rows still load on access)."""
    return queryset.defer(*(f"{path}__{column}" if path else column for path in versions for column in _HEAVY))


def documents_listed(kind: str, *, deployment_agent: bool = True) -> QuerySet:
    """Documents of `kind` with their live deployment (version, domain pin), without the heavy
    columns of those versions. `deployment_agent`: also join the deployment's agent (the document
    itself, which the API's deployment shape names); every join costs planning time per call."""
    related = ["live__version", "live__domain_version__document"] + (["live__agent"] if deployment_agent else [])
    return (
        Document.objects.filter(kind=kind)
        .select_related(*related)
        .defer(*(f"live__{version}__{column}" for version in ("version", "domain_version") for column in _HEAVY))
    )
