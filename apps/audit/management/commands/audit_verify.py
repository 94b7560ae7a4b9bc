import json
from datetime import datetime
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.audit.models import PLATFORM
from apps.audit.verify import audit_verify
from apps.tenants.models import Tenant


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
            type=Path,
            metavar="FILE",
            help="Signed checkpoints kept outside the database (JSON lines, as exported), checked too.",
        )
        parser.add_argument("--json", action="store_true", help="One JSON object per chain.")

    def handle(self, *args, tenant=None, platform=False, checkpoints=None, json=False, **options):
        if tenant:
            found = Tenant.objects.filter(slug=tenant).values_list("pk", flat=True).first()
            if found is None:
                raise CommandError(f"No tenant with slug {tenant!r}.")
            chains = [found]
        elif platform:
            chains = [PLATFORM]
        else:
            chains = [PLATFORM, *Tenant.objects.order_by("pk").values_list("pk", flat=True)]
        external = _read_checkpoints(checkpoints) if checkpoints else []
        broken = 0
        for chain in chains:
            result = audit_verify(chain, external=[c for c in external if int(c.get("tenant_id", -1)) == chain])
            broken += not result.ok
            self.stdout.write(_json.dumps(result.as_dict()) if json else result.summary())
        if broken:
            raise CommandError(f"{broken} chain{'s' if broken != 1 else ''} broken.", returncode=1)


_json = json


def _read_checkpoints(path: Path) -> list[dict]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise CommandError(f"{path}: {exc.strerror}.") from None
    checkpoints = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = _json.loads(line)
            checkpoint = {k: item[k] for k in ("tenant_id", "seq", "hash", "signed_at", "key_id", "signature")}
            numbers = [checkpoint["tenant_id"], checkpoint["seq"]]
            texts = [checkpoint[k] for k in ("hash", "signed_at", "key_id", "signature")]
            if not all(type(n) is int for n in numbers) or not all(isinstance(t, str) for t in texts):
                raise TypeError
            datetime.fromisoformat(checkpoint["signed_at"].replace("Z", "+00:00"))
            checkpoints.append(checkpoint)
        except (ValueError, KeyError, TypeError):
            raise CommandError(
                f"{path}:{number}: not a checkpoint (JSON with tenant_id, seq, hash, signed_at, key_id, signature)."
            ) from None
    return checkpoints
