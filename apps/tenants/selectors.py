from django.db.models import QuerySet

from apps.tenants.models import Tenant


def tenant_list() -> QuerySet[Tenant]:
    return Tenant.objects.exclude(schema_name="public").prefetch_related("domains")


def tenant_of_option(slug: str) -> Tenant:
    """The tenant a management command's --tenant names; CommandError for any other text (an
    empty one included: a script's unset variable must not widen the command to every tenant
    or to the platform)."""
    from django.core.management import CommandError

    try:
        return tenant_get(slug=slug)
    except Tenant.DoesNotExist:
        raise CommandError(f"No tenant with slug {slug!r}.") from None


def tenant_get(*, slug: str) -> Tenant:
    """Raises Tenant.DoesNotExist — also for text no slug holds (slugs are ASCII: a stray byte of
    a shell that is not UTF-8 arrives as a lone surrogate, which no query can carry)."""
    if not slug.isascii() or "\x00" in slug:
        raise Tenant.DoesNotExist(f"No tenant has the slug {slug!r}.")
    return tenant_list().get(slug=slug)


def base_url_of_option(base_url: str) -> str:
    """A command's --base-url (invitation links: `{domain}` stands for the workspace's host),
    checked before anything is created; CommandError for one whose braces name anything else."""
    from django.core.management import CommandError

    try:
        base_url.format(domain="example.invalid")
    except (KeyError, IndexError, AttributeError, ValueError):
        raise CommandError(f"--base-url {base_url!r}: only {{domain}} may stand in braces.") from None
    return base_url
