from apps.tenants.management.commands.suspend_tenant import Command as SuspendCommand
from apps.tenants.services import tenant_resume


class Command(SuspendCommand):
    help = "Resume a suspended tenant."
    change = staticmethod(tenant_resume)
