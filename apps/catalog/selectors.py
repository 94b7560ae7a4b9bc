"""Read paths shared by the API and MCP."""

from django.db.models import QuerySet

from apps.catalog.models import Document

# A version's YAML and parsed content can be large; lists show neither.
_HEAVY = ("source", "content")


def documents_listed(kind: str) -> QuerySet:
    """Documents of `kind` with their live deployment (version, domain pin), without the heavy
    columns of those versions."""
    return (
        Document.objects.filter(kind=kind)
        .select_related("live__version", "live__domain_version__document", "live__agent")
        .defer(*(f"live__{version}__{column}" for version in ("version", "domain_version") for column in _HEAVY))
    )
