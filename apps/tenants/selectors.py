from string import Formatter

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
        # Fields are parsed, never formatted: a width (`{domain:>99999999999}`) would be built first.
        fields = [(name, spec, conversion) for _text, name, spec, conversion in Formatter().parse(base_url)]
    except ValueError:
        fields = [("", "", None)]
    if any((name, spec, conversion) != ("domain", "", None) for name, spec, conversion in fields if name is not None):
        raise CommandError(f"--base-url {base_url!r}: only {{domain}} may stand in braces.")
    return base_url
