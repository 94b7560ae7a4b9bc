import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.audit.export import LINE_ERRORS, checkpoint_read
from apps.audit.models import PLATFORM, AuditEvent
from apps.audit.scope import rls_scope
from apps.audit.selectors import audit_chain_base
from apps.audit.verify import audit_verify
from apps.tenants.models import Tenant
from apps.tenants.selectors import tenant_of_option
from foundry.cli import file_path


class Command(BaseCommand):
    help = (
        "Recompute audit chains and check their signed checkpoints; name the first sequence number "
        "where a chain breaks. Exits 1 if any chain is broken."
    )

    def add_arguments(self, parser):
        which = parser.add_mutually_exclusive_group()
        which.add_argument("--tenant", metavar="SLUG", help="Only this tenant's chain.")
        which.add_argument("--platform", action="store_true", help="Only the platform's chain.")
        parser.add_argument(
            "--checkpoints",
            type=file_path,
            metavar="FILE",
            help="Signed checkpoints kept outside the database (JSON lines, as exported), checked too.",
        )
        parser.add_argument("--json", action="store_true", help="One JSON object per chain.")

    def handle(self, *args, tenant=None, platform=False, checkpoints=None, json=False, **options):
        if tenant is not None:  # an empty slug (a script's unset variable) is no tenant, not all
            chains = [tenant_of_option(tenant).pk]
        elif platform:
            chains = [PLATFORM]
        else:
            chains = [PLATFORM, *Tenant.objects.order_by("pk").values_list("pk", flat=True)]
        external = _read_checkpoints(checkpoints) if checkpoints else []
        hashed_as, imported_at = {}, {}
        if external:
            for chain in chains:
                with rls_scope(chain):
                    hashed_as[chain] = audit_chain_base(chain).hash_tenant_id
                    if hashed_as[chain] != chain:  # an imported chain: where the import's own event sits
                        imported_at[chain] = (
                            AuditEvent.objects.filter(tenant_id=chain, action="tenant.imported")
                            .order_by("seq")
                            .values_list("seq", flat=True)
                            .first()
                        )
        used = set()
        broken = 0
        for chain in chains:
            # Its own checkpoints, and those signed under the id it is hashed under (an imported
            # chain's origin's, from before the import: below its `tenant.imported` event, for the
            # origin goes on signing its own chain) unless that chain is verified here too.
            origin = hashed_as.get(chain, chain)
            before = imported_at.get(chain) or float("inf")
            mine = [
                c
                for c in external
                if c["tenant_id"] == chain or (c["tenant_id"] == origin and origin not in chains and c["seq"] < before)
            ]
            used.update(id(c) for c in mine)
            result = audit_verify(chain, external=mine)
            broken += not result.ok
            self.stdout.write(_json.dumps(result.as_dict()) if json else result.summary())
        unused = {c["tenant_id"] for c in external if id(c) not in used}
        if unused:
            self.stderr.write(
                f"{checkpoints}: checkpoints of chain {', '.join(map(str, sorted(unused)))} matched no chain verified."
            )
        if broken:
            raise CommandError(f"{broken} chain{'s' if broken != 1 else ''} broken.", returncode=1)


_json = json


def _read_checkpoints(path: Path) -> list[dict]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise CommandError(f"{path}: {exc.strerror}.") from None
    except UnicodeDecodeError:
        raise CommandError(f"{path}: not UTF-8 text (JSON lines of checkpoints).") from None
    checkpoints = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = _json.loads(line)
            checkpoint_read(item)  # as an export's verification reads its checkpoints
            checkpoints.append({k: item[k] for k in ("tenant_id", "seq", "hash", "signed_at", "key_id", "signature")})
        except LINE_ERRORS:  # UnicodeEncodeError is a ValueError
            raise CommandError(
                f"{path}:{number}: not a checkpoint (JSON with tenant_id, seq, hash, signed_at, key_id, signature)."
            ) from None
    return checkpoints
