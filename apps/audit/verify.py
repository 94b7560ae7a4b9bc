"""Verify a chain: recompute every event's hash, follow the links, and hold the result against
the signed checkpoints (those in the database, and any kept outside it).

The verdict is either "intact" — up to the last event, and proven up to the last validly signed
checkpoint — or the first sequence number where the chain breaks, with what is wrong there:
`missing` (a number skipped: a deleted row), `link_broken` (an event whose previous hash is not
its predecessor's: deleted, inserted or reordered rows), `altered` (an event whose content no
longer gives its hash), `rewritten` (hashes consistent, but not the ones the platform signed,
or not the one the chain's head recorded: events were changed and re-hashed without the signing
key), `truncated` (events a signed checkpoint vouches for are gone), `inserted` (events after the
chain's head: added outside the platform), `signature_invalid` (a checkpoint the
platform's keys did not sign), `anchor_unsigned` (a chain pruned by retention whose first kept
event does not follow a signed checkpoint), `prune_unrecorded` (a chain whose start moved with
no `audit.pruned` event in it saying so: cut other than by the owner's prune, which records it),
`time_reversed` (an event dated before the one it follows: written by hand, or the database's
clock set back — appends read the time once they hold their chain, so it never goes back).

The chain is read in one REPEATABLE READ snapshot (when the caller has no transaction open): a
prune or appends committed meanwhile do not make an intact chain look broken.

A chain's hashes and signatures are computed under the id its base names (an imported chain
keeps its first tenant's), and it is walked from the base's first kept event (models.AuditChainBase).
"""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from apps.audit.chain import GENESIS, event_hash
from apps.audit.models import PLATFORM, AuditChain, AuditChainBase, AuditCheckpoint
from apps.audit.scope import rls_scope
from apps.audit.selectors import audit_chain_base
from apps.audit.signing import checkpoint_signed, public_keys
from foundry.cache_values import cache_or, sealed_get, sealed_set

# Every kind of break a verification names (the API's ChainBreakKindEnum; docs/audit.md).
BREAK_KINDS = (
    "missing",
    "link_broken",
    "altered",
    "rewritten",
    "truncated",
    "inserted",
    "signature_invalid",
    "anchor_unsigned",
    "prune_unrecorded",
    "time_reversed",
)
PRUNED = "audit.pruned"  # the event the owner's prune appends (migrations/0011): details.first_seq

BATCH = 10_000
MAX_PROBLEMS = 100  # after the first break, enough to show its extent
# The time comes back as the very text the append hashed (to_char in UTC): no datetime per row.
# NULL for a time no append writes, outside the years 1 to 9999 (AD): `infinity`, or a BC date
# whose text, without its era, is the AD one's.
CHAIN_SQL = (
    "SELECT seq, CASE WHEN occurred_at >= '0001-01-01 00:00:00+00' AND occurred_at < '10000-01-01 00:00:00+00'"
    " THEN to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') END, actor_type,"
    " actor_id, action, target_type, target_id, outcome, ip, user_agent, request_id, details, prev_hash, hash"
    " FROM public.audit_auditevent WHERE tenant_id = %s ORDER BY seq"
)


@dataclass(frozen=True)
class Break:
    seq: int
    kind: str
    message: str


@dataclass
class Verification:
    tenant_id: int
    events: int = 0
    last_seq: int = 0
    last_hash: str = GENESIS
    signed_seq: int = 0  # the last event a valid signed checkpoint vouches for
    checkpoints: int = 0
    problems: list[Break] = field(default_factory=list)
    _highest: int = field(default=-1, repr=False, compare=False)  # the highest seq among `problems`

    def add(self, seq: int, kind: str, message: str) -> None:
        """Kept: the MAX_PROBLEMS lowest by sequence number, so the first break is always among
        them (many bogus checkpoints far ahead must not push the real one out)."""
        problem = Break(seq, kind, message)
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)
            self._highest = max(self._highest, seq)
            return
        if seq >= self._highest:  # the walk goes up: past the cap, the usual case
            return
        worst = max(range(len(self.problems)), key=lambda i: self.problems[i].seq)
        self.problems[worst] = problem
        self._highest = max(p.seq for p in self.problems)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first(self) -> Break | None:
        return min(self.problems, key=lambda p: p.seq) if self.problems else None

    def summary(self) -> str:
        if self.ok:
            unsigned = self.last_seq - self.signed_seq
            tail = f"; {unsigned} later event{'s' if unsigned != 1 else ''} not yet signed" if unsigned else ""
            return (
                f"Chain {self.tenant_id}: intact, {self.events} events, proven by a signed checkpoint"
                f" up to #{self.signed_seq}{tail}."
            )
        first = self.first
        return f"Chain {self.tenant_id}: BROKEN at #{first.seq} ({first.kind}): {first.message}"

    def as_dict(self) -> dict:
        first = self.first
        return {
            "chain": self.tenant_id,
            "intact": self.ok,
            "events": self.events,
            "last_seq": self.last_seq,
            "last_hash": self.last_hash,
            "signed_seq": self.signed_seq,
            "checkpoints": self.checkpoints,
            "first_break": None if first is None else {"seq": first.seq, "kind": first.kind, "message": first.message},
            "problems": [{"seq": p.seq, "kind": p.kind, "message": p.message} for p in self.problems],
        }


ATTEMPTS = 3  # a verification a prune overtook is made again (as many times, at most)


def audit_verify(
    tenant_id: int, *, external: list[dict] | None = None, keys: dict[str, str] | None = None
) -> Verification:
    """Verify chain `tenant_id`; `external` adds checkpoints kept outside the database (as exported),
    `keys` (key id → base64 public key) replaces the platform's own."""
    for _ in range(ATTEMPTS):
        result, moved = _verify(tenant_id, external, keys)
        if not moved:
            break
    return result


def _verify(tenant_id: int, external: list[dict] | None, keys: dict[str, str] | None) -> tuple[Verification, bool]:
    """The verification, and whether the chain's start moved while it ran (a prune committed in a
    caller's READ COMMITTED transaction, where each statement reads afresh): then it is not to be
    believed, and is made again."""
    result = Verification(tenant_id)
    with _snapshot(), rls_scope(tenant_id):
        checkpoints = [
            {
                "tenant_id": c.tenant_id,
                "seq": c.seq,
                "hash": c.hash,
                "signed_at": c.signed_at,
                "key_id": c.key_id,
                "signature": c.signature,
            }
            for c in AuditCheckpoint.objects.filter(tenant_id=tenant_id)
        ]
        head = AuditChain.objects.filter(tenant_id=tenant_id).first()
        base = audit_chain_base(tenant_id)
        wanted = _signed(result, checkpoints + list(external or ()), base, keys)
        pruned_to: set[int] = set()
        seen = _walk(result, base, {c["seq"] for c in wanted} | ({head.seq} if head is not None else set()), pruned_to)
        # Read again after the walk (the same snapshot, unless a caller's transaction reads each
        # statement afresh): events appended meanwhile moved it on (head and event are written in
        # one transaction), so one beyond it now was put there by hand.
        head_after = AuditChain.objects.filter(tenant_id=tenant_id).first()
        base_after = audit_chain_base(tenant_id)
    if (base_after.first_seq, base_after.first_prev_hash) != (base.first_seq, base.first_prev_hash):
        return result, True
    anchored = base.first_seq == 1
    for checkpoint in sorted(wanted, key=lambda c: c["seq"]):
        seq = checkpoint["seq"]
        if seq < base.first_seq:  # vouches for pruned events; the last of them, for the start
            if seq == base.first_seq - 1 and checkpoint["hash"] == base.first_prev_hash:
                anchored = True
                result.signed_seq = max(result.signed_seq, seq)
            continue
        if seq > result.last_seq:
            result.add(
                result.last_seq + 1,
                "truncated",
                f"a signed checkpoint vouches for #{seq}; the chain ends at #{result.last_seq}",
            )
        elif seen.get(seq) != checkpoint["hash"]:
            result.add(
                seq, "rewritten", f"#{seq} does not have the hash the platform signed (events up to it were re-hashed)"
            )
        else:
            result.signed_seq = max(result.signed_seq, seq)
    if not anchored:
        result.add(
            base.first_seq,
            "anchor_unsigned",
            f"events before #{base.first_seq} were pruned, and no signed checkpoint vouches for #{base.first_seq - 1}",
        )
    if base.first_seq > 1 and tenant_id == PLATFORM:
        # No prune ever cuts the platform's chain (audit_prune refuses it): whatever `audit.pruned`
        # event it holds, one that no longer starts at #1 was cut by hand.
        result.add(1, "missing", f"the platform's chain is never pruned, yet it starts at #{base.first_seq}")
    elif base.first_seq > 1 and base.first_seq not in pruned_to:
        result.add(
            base.first_seq,
            "prune_unrecorded",
            f"the chain starts at #{base.first_seq}, and no {PRUNED} event in it records that prune",
        )
    if head is not None and head.seq > result.last_seq:
        result.add(
            result.last_seq + 1,
            "truncated",
            f"the chain's head is at #{head.seq}; its events end at #{result.last_seq}",
        )
    elif head is not None and head.seq >= base.first_seq and seen.get(head.seq) != head.hash:
        result.add(
            head.seq, "rewritten", f"#{head.seq} does not have the hash the chain's head recorded when it was appended"
        )
    if head_after is not None and result.last_seq > head_after.seq:
        result.add(
            head_after.seq + 1,
            "inserted",
            f"events after the chain's head (#{head_after.seq}) were added outside the platform",
        )
    return result, False


@contextmanager
def _snapshot() -> Iterator[None]:
    """One REPEATABLE READ, read-only transaction for the whole verification, unless the caller
    has one open already (its isolation is set; this cannot change it)."""
    if connection.in_atomic_block:
        yield
        return
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield


def chain_ids(base: AuditChainBase) -> set[int]:
    """Every id the chain's checkpoints may name it by: its own, the one it is hashed under, and
    those it was stored under before (an import of an import)."""
    return {base.tenant_id, base.hash_tenant_id, *(base.signed_as or ())}


def _signed(result: Verification, checkpoints: list[dict], base: AuditChainBase, keys) -> list[dict]:
    """The checkpoints validly signed for this chain; the others become problems. A checkpoint
    names the chain by the id it is stored under or an id it was signed under (`chain_ids`: an
    imported chain's first tenant, as checkpoints kept outside the database from before the
    import say, or a tenant it was imported into on the way)."""
    valid = []
    ids = chain_ids(base)
    for checkpoint in checkpoints:
        signed_at = checkpoint["signed_at"]
        if isinstance(signed_at, str):
            signed_at = datetime.fromisoformat(signed_at.replace("Z", "+00:00"))
        dated = {**checkpoint, "signed_at": signed_at}
        if int(checkpoint.get("tenant_id", base.tenant_id)) in ids and checkpoint_signed(
            dated, chain_ids=ids, hash_id=base.hash_tenant_id, keys=keys
        ):
            valid.append(checkpoint)
        else:
            known = checkpoint.get("key_id") in (keys if keys is not None else public_keys())
            result.add(
                checkpoint["seq"],
                "signature_invalid",
                f"the checkpoint of #{checkpoint['seq']} is not signed by a platform key"
                + (
                    "" if known else f" (it names key {str(checkpoint.get('key_id'))[:64]!r}, which is not listed here)"
                ),
            )
    result.checkpoints = len(valid)
    return valid


def _walk(result: Verification, base: AuditChainBase, keep: set[int], pruned_to: set[int]) -> dict[int, str]:
    """Recompute the chain in order from its base; the hashes at the sequence numbers in `keep`.
    Adds to `pruned_to` where each intact `audit.pruned` event says the chain then started."""
    seen: dict[int, str] = {}
    expected, previous, previous_at = base.first_seq, base.first_prev_hash, None
    result.last_seq, result.last_hash = base.first_seq - 1, base.first_prev_hash
    with connection.chunked_cursor() as cursor:
        cursor.execute(CHAIN_SQL, [base.tenant_id])
        while rows := cursor.fetchmany(BATCH):
            for (
                seq,
                at,
                actor_type,
                actor_id,
                action,
                target_type,
                target_id,
                outcome,
                ip,
                user_agent,
                request_id,
                details,
                prev_hash,
                digest,
            ) in rows:
                if seq != expected:
                    result.add(expected, "missing", f"#{expected} is not in the chain (next is #{seq})")
                if prev_hash != previous:
                    result.add(seq, "link_broken", f"#{seq} does not follow the event before it")
                if at is None:
                    result.add(seq, "altered", f"#{seq} is dated outside the years 1 to 9999, which no append writes")
                else:
                    recomputed = event_hash(
                        tenant_id=base.hash_tenant_id, seq=seq, occurred_at=at, actor_type=actor_type,
                        actor_id=actor_id, action=action, target_type=target_type, target_id=target_id,
                        outcome=outcome, ip=ip, user_agent=user_agent, request_id=request_id, details=details,
                        prev_hash=prev_hash,
                    )  # fmt: skip
                    if recomputed != digest:
                        result.add(seq, "altered", f"#{seq}'s content does not give its hash")
                    elif action == PRUNED:
                        pruned_to.add(_first_seq(details))
                    if previous_at is not None and at < previous_at:  # both UTC text of one width: in order
                        result.add(seq, "time_reversed", f"#{seq} is dated {at}, before #{seq - 1} ({previous_at})")
                    previous_at = at
                if seq in keep:
                    seen[seq] = digest
                previous, expected = digest, seq + 1
                result.events += 1
                result.last_seq, result.last_hash = seq, digest
    return seen


def _first_seq(details: str) -> int | None:
    """Where an `audit.pruned` event's details say the chain started after that prune."""
    try:
        value = json.loads(details).get("first_seq")
    except (ValueError, AttributeError, RecursionError):
        return None
    return value if isinstance(value, int) else None


# --- shared: the console's badge and the API --------------------------------------------------
VERIFY_CACHE_SECONDS = 60
# How long a verification's claim holds: past it (its process killed mid-way), another may start.
VERIFY_CLAIM_SECONDS = 600


def chain_status(chain: int, *, compute: bool = True) -> dict | None:
    """The chain's verification (Verification.as_dict() plus `checked_at`), as the console's badge
    and the API answer it: kept VERIFY_CACHE_SECONDS, and made by one request at a time (a claim
    in the cache, which a purge deletes). None when nothing is kept and `compute` is false, or
    another request is verifying the chain now. Ten people opening a large workspace's trail at
    once made ten verifications of a million events, ~15 s of a server process each, and as many
    snapshots held open meanwhile."""
    key = f"audit:chain-status:{chain}"
    status = sealed_get(key)  # another chain's status, moved under this key, is none
    if isinstance(status, dict) and isinstance(status.get("checked_at"), str):  # the cache holds JSON
        status["checked_at"] = datetime.fromisoformat(status["checked_at"])
    if status is None and compute:
        claim = f"{key}:claim"
        # Another request verifying the chain now: None ("verifying"); the cache away: verified here.
        if not cache_or(lambda: cache.add(claim, 1, VERIFY_CLAIM_SECONDS), True):
            return None
        try:
            result = audit_verify(chain)
            status = {**result.as_dict(), "checked_at": timezone.now()}
            sealed_set(key, {**status, "checked_at": status["checked_at"].isoformat()}, VERIFY_CACHE_SECONDS)
        finally:
            cache_or(lambda: cache.delete(claim), None)
    return status
