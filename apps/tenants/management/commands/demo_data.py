from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand
from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.accounts.permissions import Role
from apps.audit.history import history_actor
from apps.audit.services import audit_record
from apps.catalog.models import Document
from apps.catalog.services import agent_deploy, document_validate, version_publish
from apps.runs.models import Run
from apps.runs.services import run_start
from apps.tenants.models import Tenant
from apps.tenants.services import schema_name_for_slug, tenant_provision

DEMO_TENANTS = [
    ("acme", "Acme Corporation", Tenant.Plan.ENTERPRISE, "owner@acme.example"),
    ("globex", "Globex", Tenant.Plan.TEAM, "owner@globex.example"),
]
EXAMPLES = Path(settings.BASE_DIR) / "examples"
# Per tenant: the example domains published, then the example agents published and deployed.
DEMO_DOCUMENTS = {
    "acme": (["domains/finance.yaml"], ["agents/invoice-triage.yaml"]),
    "globex": (["domains/logistics.yaml"], ["agents/shipment-tracker.yaml"]),
}
DEMO_PASSWORD = "foundry-demo-password"  # documented in README; demo only
OPERATOR_EMAIL = "operator@foundry.example"


class Command(BaseCommand):
    help = (
        "Create the demo tenants (acme, globex) and a platform operator, all signing in with a published "
        "password: only with FOUNDRY_DEBUG on (or --force). Safe to run twice."
    )

    def add_arguments(self, parser):
        parser.add_argument("--port", default="8000")
        parser.add_argument(
            "--force", action="store_true", help="Create them with FOUNDRY_DEBUG off too (never on a real deployment)."
        )

    def handle(self, *args, port, force=False, **options):
        base = settings.FOUNDRY_BASE_DOMAIN
        if not settings.DEBUG and not force:
            # The compose stack runs this on every `up`, FOUNDRY_DEBUG=0 included: its accounts'
            # password is in the README, so a production-like stack gets none of them.
            self.stdout.write("FOUNDRY_DEBUG is off: no demo data (its accounts' password is published).")
            return
        with schema_context("public"), history_actor("cli:demo_data"):
            if not User.objects.filter(email=OPERATOR_EMAIL).exists():
                operator = User.objects.create_user(
                    OPERATOR_EMAIL, DEMO_PASSWORD, is_staff=True, full_name="Platform operator"
                )
                audit_record(action="operator.created", actor="cli:demo_data", target=operator)
        with history_actor("cli:demo_data"):  # the model history it writes names it, as the trail does
            for slug, name, plan, owner in DEMO_TENANTS:
                if not Tenant.objects.filter(slug=slug).exists():
                    tenant_provision(
                        slug=slug,
                        name=name,
                        plan=plan,
                        owner_email=owner,
                        owner_password=DEMO_PASSWORD,
                        actor="cli:demo_data",
                    )
                with schema_context(schema_name_for_slug(slug)):
                    if not User.objects.filter(email=owner, role=Role.OWNER).exists():
                        # A workspace of that name the demo did not make (its owner is someone else's):
                        # no members with the published password in it, nothing published in its name.
                        self.stdout.write(f"Workspace {slug} exists and is not the demo's: left as it is.")
                        continue
                    for role in (Role.DEVELOPER, Role.VIEWER):
                        email = f"{role}@{slug}.example"
                        if not User.objects.filter(email=email).exists():
                            User.objects.create_user(email, DEMO_PASSWORD, role=role)
                    self._documents(slug, User.objects.get(email=owner))
        self.stdout.write("")
        self.stdout.write(f"Agent Foundry demo data is ready. Sign in with password '{DEMO_PASSWORD}':")
        self.stdout.write(f"  operator console  http://{base}:{port}/login/   {OPERATOR_EMAIL}")
        for slug, _name, _plan, owner in DEMO_TENANTS:
            self.stdout.write(
                f"  {slug:<16}  http://{slug}.{base}:{port}/login/   {owner} (owner), "
                f"developer@{slug}.example, viewer@{slug}.example"
            )

    @staticmethod
    def _publish(owner: User, path: str):
        """The demo document published, unless the workspace has it already (a later run leaves
        what its developers made of it alone): what version_publish returned, or None."""
        source = (EXAMPLES / path).read_text()
        result = document_validate(source, path)
        if Document.objects.filter(kind=result.kind, name=result.name).exists():
            return None
        return version_publish(actor=owner, source=source, message="Demo data", file=path)

    def _documents(self, slug: str, owner: User) -> None:
        domains, agents = DEMO_DOCUMENTS[slug]
        for path in domains:
            self._publish(owner, path)
        deployed = []
        for path in agents:
            published = self._publish(owner, path)
            if published is not None:
                version = published.version
                deployed.append(agent_deploy(actor=owner, document=version.document, number=version.number))
        # One run per sandbox test of each demo agent (the scripted provider follows the test's
        # script), done by the worker once it starts: invoice-triage's large invoice waits for
        # an approval in the console.
        if not Run.objects.exists():
            for deployment in deployed:
                for test in deployment.version.content["spec"].get("tests") or ():
                    run_start(actor=owner, agent=deployment.agent, input=test["input"])
