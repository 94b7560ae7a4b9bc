"""Members' addresses with an A-label domain (a@xn--bcher-kva.test) written with its U-label
(a@bücher.test), the one spelling email_clean now keeps: the same mailbox, so one member. An
address whose other spelling another member has already is left as it is."""

import idna
from django.db import migrations


def _spelled(email: str) -> str | None:
    local, _, domain = email.rpartition("@")
    if "xn--" not in domain or not domain.isascii():
        return None
    try:
        return f"{local}@{idna.decode(idna.encode(domain, uts46=True))}"
    except (idna.IDNAError, UnicodeError, ValueError):
        return None


def forwards(apps, schema_editor):
    User = apps.get_model("accounts", "User")
    for user in User.objects.filter(email__contains="xn--").only("pk", "email"):
        spelled = _spelled(user.email)
        if spelled and spelled != user.email and not User.objects.filter(email=spelled).exists():
            User.objects.filter(pk=user.pk).update(email=spelled)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0002_user_invited_at")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
