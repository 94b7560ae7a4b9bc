"""The SSO settings in the one spelling members' addresses now have (accounts 0003): the
break-glass owner's address and the allowed domains with U-labels for their A-labels
(`xn--bcher-kva.test` is `bücher.test`). Both were stored as typed before, and every comparison
with a member's address is exact: a break-glass owner at such a domain could no longer sign in
with a password while SSO is required, and verified members of such an allowed domain were
refused `email_domain_refused`."""

import idna
from django.db import migrations


def _domain(domain: str) -> str:
    if "xn--" not in domain or not domain.isascii():
        return domain
    try:
        return idna.decode(idna.encode(domain, uts46=True))
    except (idna.IDNAError, UnicodeError, ValueError):
        return domain


def forwards(apps, schema_editor):
    SsoConfiguration = apps.get_model("identity", "SsoConfiguration")
    for config in SsoConfiguration.objects.all():
        local, at, domain = config.break_glass_email.rpartition("@")
        break_glass = f"{local}@{_domain(domain)}" if at else config.break_glass_email
        domains = config.allowed_domains
        if isinstance(domains, list) and all(isinstance(d, str) for d in domains) and any("xn--" in d for d in domains):
            domains = sorted({_domain(d) for d in domains})
        if (break_glass, domains) != (config.break_glass_email, config.allowed_domains):
            SsoConfiguration.objects.filter(pk=config.pk).update(break_glass_email=break_glass, allowed_domains=domains)


class Migration(migrations.Migration):
    dependencies = [("identity", "0003_database_defaults")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
