"""A chain as a SIEM reads it: JSON lines, or OCSF-shaped JSON lines, from a sequence cursor.

An export is a snapshot: it covers the events after the cursor (`after`) up to the chain's head
when it started (`through`), in sequence order, then the signed checkpoints that vouch for
them, so the file can be verified offline with the platform's public keys (`export_verify`).
Each batch is read in a Row-Level Security scope of its own (a short transaction): a streamed
response outlives the view, and no transaction stays open while a slow client reads.

Events carry pseudonymous actor ids only (`user:42`): names and emails stay in the erasable
actor table and are never exported. Every event has a stable id, `<chain>:<seq>`, by which a
receiver drops what it already has (delivery is at least once).
"""

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import transaction
from django.http import HttpRequest

from apps.audit.chain import GENESIS, details_text, event_hash, time_text
from apps.audit.models import AuditChain, AuditChainBase, AuditCheckpoint, AuditEvent, Outcome
from apps.audit.scope import rls_scope
from apps.audit.selectors import audit_chain_base
from apps.audit.services import audit_record, checkpoint_dict
from apps.audit.signing import checkpoint_signed
from apps.audit.verify import Verification
from foundry.errors import ServiceError

BATCH = 1000
MAX_SEQ = 2**63 - 1
FORMATS = ("jsonl", "ocsf")
OCSF_VERSION = "1.3.0"
PRODUCT = {"name": "Agent Foundry", "vendor_name": "Agent Foundry", "feature": {"name": "Audit trail"}}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def event_id(event: AuditEvent) -> str:
    """The event's id across exports and deliveries: `<chain>:<seq>:<first 16 hex digits of its
    hash>`. The same event keeps it whenever it is sent again; another event under the same
    number (a chain restored from a backup goes on from the backup's head, reusing the numbers of
    events appended since) gets another, so a receiver dropping repeats by id never drops it."""
    return f"{event.tenant_id}:{event.seq}:{event.hash[:16]}"


# --- input ----------------------------------------------------------------------------------


def export_format_parse(value: str | None) -> str:
    """`format`: jsonl (the default, when not given) or ocsf; an empty value is none of them."""
    fmt = "jsonl" if value is None else value
    if fmt not in FORMATS:
        raise ServiceError("format_invalid", f"format is one of {', '.join(FORMATS)}.")
    return fmt


def export_cursor_parse(value: str | None) -> int:
    """`after`: a sequence number (0, the default when not given: from the first event)."""
    if value is None:
        return 0
    if not (value.isascii() and value.isdigit()) or len(value) > 19 or int(value) > MAX_SEQ:
        raise ServiceError("cursor_invalid", "after is a sequence number: a whole number from 0.")
    return int(value)


# --- records --------------------------------------------------------------------------------


def _millis(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def _hashed_as(event: AuditEvent) -> dict:
    """`hashed_as` where the chain's hashes are computed under another id (an imported chain)."""
    if event.hashed_as is None or event.hashed_as == event.tenant_id:
        return {}
    return {"hashed_as": event.hashed_as}


def events_hashed_as(tenant_id: int, events: list[AuditEvent]) -> list[AuditEvent]:
    """The events, each told the id its chain is hashed under; call inside `rls_scope(tenant_id)`."""
    hashed_as = audit_chain_base(tenant_id).hash_tenant_id
    for event in events:
        event.hashed_as = hashed_as
    return events


def jsonl_record(event: AuditEvent) -> dict:
    return {
        "kind": "event",
        "id": event_id(event),
        "chain": event.tenant_id,
        **_hashed_as(event),
        "seq": event.seq,
        "occurred_at": time_text(event.occurred_at),
        "actor": {"id": event.actor_id, "type": event.actor_type},
        "action": event.action,
        "target_type": event.target_type,
        "target_id": event.target_id,
        "outcome": event.outcome,
        "ip": event.ip,
        "user_agent": event.user_agent,
        "request_id": event.request_id,
        "details": event.data,
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }


# OCSF 1.3 classes: (class_uid, class name, category_uid, category name).
AUTHENTICATION = (3002, "Authentication", 3, "Identity & Access Management")
ACCOUNT_CHANGE = (3001, "Account Change", 3, "Identity & Access Management")
API_ACTIVITY = (6003, "API Activity", 6, "Application Activity")
BASE_EVENT = (0, "Base Event", 0, "Uncategorized")
# API Activity's activity by the action's last word (`token.issued` → Create); else Other (99).
_API_VERBS = {
    **dict.fromkeys(("added", "created", "issued", "service_issued", "invite_issued", "publish"), (1, "Create")),
    **dict.fromkeys(("provisioned", "start", "started", "imported", "linked"), (1, "Create")),
    **dict.fromkeys(("fetch", "export", "exported", "read", "downloaded"), (2, "Read")),
    **dict.fromkeys(("set", "update", "updated", "changed", "role_changed", "deploy", "rollback"), (3, "Update")),
    **dict.fromkeys(("cancel", "approve", "reject", "rejected", "suspended", "resumed", "erased"), (3, "Update")),
    **dict.fromkeys(("invite_accepted", "rotated", "restored", "configure", "disable", "applied"), (3, "Update")),
    **dict.fromkeys(("deletion_scheduled", "deletion_cancelled", "role_synced", "email_synced"), (3, "Update")),
    **dict.fromkeys(("removed", "delete", "deleted", "revoked", "purged"), (4, "Delete")),
}
_ACTOR_TYPES = {"user": (1, "User"), "operator": (2, "Admin"), "service": (3, "System"), "anonymous": (0, "Unknown")}


def ocsf_class(action: str) -> tuple[tuple[int, str, int, str], int, str]:
    """The OCSF class of an action, and its activity (id, name)."""
    family, _, rest = action.partition(".")
    verb = action.rsplit(".", 1)[-1]
    if family == "auth":
        if rest.startswith("login"):
            return AUTHENTICATION, 1, "Logon"
        if rest.startswith("logout"):
            return AUTHENTICATION, 2, "Logoff"
        return AUTHENTICATION, 99, "Other"
    if family in ("member", "operator"):
        if verb in ("added", "created", "provisioned"):
            return ACCOUNT_CHANGE, 1, "Create"
        if verb in ("removed", "deleted"):
            return ACCOUNT_CHANGE, 6, "Delete"
        return ACCOUNT_CHANGE, 99, "Other"
    return (API_ACTIVITY, *_API_VERBS.get(verb, (99, "Other")))


def ocsf_record(event: AuditEvent) -> dict:
    (class_uid, class_name, category_uid, category_name), activity_id, activity_name = ocsf_class(event.action)
    success = event.outcome == Outcome.SUCCESS
    type_id, type_name = _ACTOR_TYPES.get(event.actor_type, (99, event.actor_type))
    record: dict[str, Any] = {
        "class_uid": class_uid,
        "class_name": class_name,
        "category_uid": category_uid,
        "category_name": category_name,
        "activity_id": activity_id,
        "activity_name": activity_name,
        "type_uid": class_uid * 100 + activity_id,
        "type_name": f"{class_name}: {activity_name}",
        "time": _millis(event.occurred_at),
        "severity_id": 1 if success else 3,
        "severity": "Informational" if success else "Medium",
        "status_id": 1 if success else 2,
        "status": "Success" if success else "Failure",
        "message": event.action,
        "actor": {"user": {"uid": event.actor_id, "type_id": type_id, "type": type_name}},
        "metadata": {
            "version": OCSF_VERSION,
            "uid": event_id(event),
            "sequence": event.seq,
            "tenant_uid": str(event.tenant_id),
            "log_name": "audit",
            "product": PRODUCT,
        },
    }
    if not success:
        record["status_detail"] = event.outcome
    if event.ip:
        record["src_endpoint"] = {"ip": event.ip}
    if event.user_agent:
        record["http_request"] = {"user_agent": event.user_agent}
    if event.request_id:
        record["metadata"]["correlation_uid"] = event.request_id
    if class_uid == API_ACTIVITY[0]:
        record["api"] = {"operation": event.action, "service": {"name": PRODUCT["name"]}}
        if event.target_id:
            record["resources"] = [{"type": event.target_type, "uid": event.target_id}]
    elif event.target_id:
        record["user"] = {"uid": event.target_id}
    elif class_uid == AUTHENTICATION[0] and event.actor_id.startswith("user:"):
        # A sign-in records the one who signed in as its actor: the account, by the id a failed one's target has.
        record["user"] = {"uid": event.actor_id.removeprefix("user:")}
    record["unmapped"] = {
        "kind": "event",
        "chain": event.tenant_id,
        **_hashed_as(event),
        "seq": event.seq,
        "occurred_at": time_text(event.occurred_at),  # with microseconds, as hashed
        "actor_type": event.actor_type,
        "action": event.action,
        "outcome": event.outcome,
        "target_type": event.target_type,
        "target_id": event.target_id,
        "request_id": event.request_id,
        "details": event.data,
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }
    return record


def checkpoint_record(checkpoint: AuditCheckpoint, fmt: str, *, signed_as: list[int] | None = None) -> dict:
    """A signed checkpoint as the export's last records: `checkpoint_dict` with `kind` (jsonl),
    or an OCSF base event carrying it in `unmapped`; with `signed_as`, the ids the chain was
    stored under before it came here (an import of an import), which checkpoints signed there name."""
    signed = {"kind": "checkpoint", **checkpoint_dict(checkpoint), **({"signed_as": signed_as} if signed_as else {})}
    if fmt == "jsonl":
        return signed
    class_uid, class_name, category_uid, category_name = BASE_EVENT
    return {
        "class_uid": class_uid,
        "class_name": class_name,
        "category_uid": category_uid,
        "category_name": category_name,
        "activity_id": 99,
        "activity_name": "Other",
        "type_uid": 99,
        "type_name": "Base Event: Other",
        "time": _millis(checkpoint.signed_at),
        "severity_id": 1,
        "severity": "Informational",
        "status_id": 1,
        "status": "Success",
        "message": f"Signed audit checkpoint of chain {checkpoint.tenant_id} at #{checkpoint.seq}",
        "metadata": {
            "version": OCSF_VERSION,
            "uid": f"{checkpoint.tenant_id}:checkpoint:{checkpoint.seq}:{checkpoint.key_id}:{checkpoint.hash[:16]}",
            "tenant_uid": str(checkpoint.tenant_id),
            "log_name": "audit",
            "product": PRODUCT,
        },
        "unmapped": signed,
    }


def event_record(event: AuditEvent, fmt: str) -> dict:
    return ocsf_record(event) if fmt == "ocsf" else jsonl_record(event)


# Characters that JSON leaves raw in a string but that line readers break at (Python's
# str.splitlines, JavaScript's line terminators): written escaped, the same JSON.
_LINE_BREAKS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def json_text(value) -> str:
    """`value` as compact JSON, UTF-8 characters as they are, on one line for every line reader."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).translate(_LINE_BREAKS)


def json_line(record: dict) -> str:
    return json_text(record) + "\n"


# --- reading --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportRange:
    """Events `after` < seq <= `through` of chain `tenant_id`."""

    tenant_id: int
    after: int
    through: int


def chain_head(tenant_id: int) -> int:
    """The chain's last sequence number: its head row's, or, when a crash emptied that unlogged
    table (the next append rebuilds it), its last event's, or the pruned base's."""
    with rls_scope(tenant_id):
        head = AuditChain.objects.filter(tenant_id=tenant_id).values_list("seq", flat=True).first()
        if head is None:
            head = AuditEvent.objects.filter(tenant_id=tenant_id).order_by("-seq").values_list("seq", flat=True).first()
        if head is None:
            first = AuditChainBase.objects.filter(tenant_id=tenant_id).values_list("first_seq", flat=True).first()
            head = (first or 1) - 1
        return head


@transaction.atomic
def audit_export_start(
    *, tenant_id: int, fmt: str, after: int, actor: Any = None, request: HttpRequest | None = None
) -> ExportRange:
    """Fix the range an export covers (up to the head now) and record the export itself
    (`audit.export`, the next event of the chain: the next export includes it) — not for a HEAD
    request, which exports nothing."""
    head = chain_head(tenant_id)
    if after > head:
        raise ServiceError("cursor_beyond_head", f"The chain ends at #{head}; after must be at most {head}.")
    if request is not None and request.method == "HEAD":
        return ExportRange(tenant_id, after, head)
    audit_record(
        action="audit.export",
        actor=actor,
        request=request,
        chain=tenant_id,
        data={"format": fmt, "after": after, "through": head},
    )
    return ExportRange(tenant_id, after, head)


def export_batches(span: ExportRange, *, batch: int = BATCH) -> Iterator[list[AuditEvent]]:
    """The range's events in sequence order, `batch` at a time, each batch read in its own scope."""
    cursor = span.after
    while cursor < span.through:
        with rls_scope(span.tenant_id):
            rows = events_hashed_as(
                span.tenant_id,
                list(
                    AuditEvent.objects.filter(tenant_id=span.tenant_id, seq__gt=cursor, seq__lte=span.through).order_by(
                        "seq"
                    )[:batch]
                ),
            )
        if not rows:
            return
        yield rows
        cursor = rows[-1].seq


def export_checkpoints(span: ExportRange) -> list[AuditCheckpoint]:
    """The checkpoints that vouch for the range's events, and the last one before it (it may have
    been signed after the previous export ended), oldest first."""
    with rls_scope(span.tenant_id):
        mine = AuditCheckpoint.objects.filter(tenant_id=span.tenant_id)
        inside = list(mine.filter(seq__gt=span.after, seq__lte=span.through).order_by("seq", "signed_at"))
        before = mine.filter(seq__lte=span.after).order_by("-seq", "-signed_at").first()
    return ([before] if before is not None else []) + inside


def export_lines(span: ExportRange, *, fmt: str, checkpoints: bool = True, batch: int = BATCH) -> Iterator[str]:
    """The export as text, one batch of lines per item (for a streamed response or a file)."""
    for rows in export_batches(span, batch=batch):
        yield "".join(json_line(event_record(event, fmt)) for event in rows)
    if checkpoints:
        with rls_scope(span.tenant_id):
            signed_as = audit_chain_base(span.tenant_id).signed_as
        for checkpoint in export_checkpoints(span):
            yield json_line(checkpoint_record(checkpoint, fmt, signed_as=signed_as))


# --- offline verification -------------------------------------------------------------------


def _canonical(record: dict) -> dict:
    """The hashed fields of an exported event (either format)."""
    if "class_uid" in record:
        extra = record["unmapped"]
        return {
            "tenant_id": extra.get("hashed_as", extra["chain"]),
            "seq": extra["seq"],
            "occurred_at": extra["occurred_at"],
            "actor_type": extra["actor_type"],
            "actor_id": record["actor"]["user"]["uid"],
            "action": extra["action"],
            "target_type": extra["target_type"],
            "target_id": extra["target_id"],
            "outcome": extra["outcome"],
            "ip": record.get("src_endpoint", {}).get("ip", ""),
            "user_agent": record.get("http_request", {}).get("user_agent", ""),
            "request_id": extra["request_id"],
            "details": extra["details"],
            "prev_hash": extra["prev_hash"],
            "hash": extra["hash"],
        }
    return {
        "tenant_id": record.get("hashed_as", record["chain"]),
        "seq": record["seq"],
        "occurred_at": record["occurred_at"],
        "actor_type": record["actor"]["type"],
        "actor_id": record["actor"]["id"],
        **{k: record[k] for k in ("action", "target_type", "target_id", "outcome", "ip", "user_agent")},
        **{k: record[k] for k in ("request_id", "details", "prev_hash", "hash")},
    }


_EVENT_TEXT = ("occurred_at", "actor_type", "actor_id", "action", "target_type", "target_id", "outcome", "ip")
_EVENT_TEXT += ("user_agent", "request_id", "prev_hash", "hash")


# What reading a line of a file someone else kept may raise: a field of the wrong type, a time
# past the calendar, a number past a float (1e400), JSON nested past Python's stack.
LINE_ERRORS = (ValueError, KeyError, TypeError, AttributeError, OverflowError, RecursionError)
_HASH = re.compile(r"[0-9a-f]{64}")


def _time_read(text: str) -> datetime:
    """An exported time: with its zone (as the platform writes it), in UTC."""
    at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if at.tzinfo is None:
        raise ValueError("a time without its zone")
    return at.astimezone(UTC)  # OverflowError at the ends of the calendar


def _event_read(record: dict) -> dict:
    """An event line's hashed fields, typed, its time read (one of LINE_ERRORS otherwise: a field
    of the wrong type, as a tampered file may have)."""
    fields = _canonical(record)
    if any(type(fields[k]) is not int for k in ("tenant_id", "seq")):
        raise TypeError("tenant_id and seq are integers")
    if any(not isinstance(fields[k], str) for k in _EVENT_TEXT):
        raise TypeError("the event's fields are text")
    fields["at"] = _time_read(fields["occurred_at"])
    return fields


def checkpoint_read(record: dict) -> dict:
    """A checkpoint line's fields (an export's, or a file for `audit_verify --checkpoints`), typed,
    its time in UTC (one of LINE_ERRORS otherwise)."""
    checkpoint = {k: record[k] for k in ("tenant_id", "seq", "hash", "signed_at", "key_id", "signature")}
    if any(type(checkpoint[k]) is not int for k in ("tenant_id", "seq")):
        raise TypeError("tenant_id and seq are integers")
    if any(not isinstance(checkpoint[k], str) for k in ("hash", "signed_at", "key_id", "signature")):
        raise TypeError("hash, signed_at, key_id and signature are text")
    if not _HASH.fullmatch(checkpoint["hash"]):
        raise ValueError("a hash is 64 lowercase hex digits")
    for name in ("key_id", "signature"):
        checkpoint[name].encode("utf-8")  # a lone surrogate, written as a JSON escape, is no text
    checkpoint["signed_at"] = _time_read(checkpoint["signed_at"])
    return checkpoint


def _signed_as_read(record: dict) -> list[int]:
    """A checkpoint line's `signed_as`: the chain ids it was stored under before (one of
    LINE_ERRORS when it is no list of ids)."""
    ids = record.get("signed_as", [])
    if not isinstance(ids, list) or len(ids) > 1000 or any(type(i) is not int for i in ids):
        raise TypeError("signed_as is a list of chain ids")
    return ids


def _ocsf_rebuilt(record: dict, fields: dict, digest: str) -> dict:
    """The OCSF record the platform exports for the event the hashed `fields` describe."""
    extra = record["unmapped"]
    event = AuditEvent(**{**fields, "tenant_id": extra["chain"], "hash": digest})
    event.hashed_as = extra.get("hashed_as")
    return ocsf_record(event)


def export_verify(lines: Iterable[str], *, keys: dict[str, str] | None = None) -> Verification:
    """Verify an export without the database: recompute each event's hash, follow the links from
    the export's first event, and check the checkpoints' signatures (keys: key id → base64 public
    key, as /.well-known/foundry-audit-keys.json publishes; default: the platform's own) and that
    the events they vouch for have the hashes signed. An export resumed after a cursor starts
    from its first event's `prev_hash`, which the previous export's last event must equal."""
    result: Verification | None = None
    hashes: dict[int, str] = {}
    signed: list[dict] = []
    expected = previous = first_prev = previous_at = None
    chains: set[int] = set()  # the ids the export names its chain by: stored, and hashed as
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            extra = record.get("unmapped", record) if "class_uid" in record else record
            if extra.get("kind") == "checkpoint":
                signed.append(checkpoint_read(extra))
                chains.update(_signed_as_read(extra))
                continue
            fields = _event_read(record)
            chains.add(int(extra.get("chain", fields["tenant_id"])))
        except LINE_ERRORS:
            raise ServiceError(
                "export_line_invalid", f"Line {number} is not an exported event or checkpoint."
            ) from None
        if result is None:
            result = Verification(int(fields["tenant_id"]))
            expected, previous = fields["seq"], GENESIS if fields["seq"] == 1 else fields["prev_hash"]
            first_prev = fields["prev_hash"]
        seq = fields["seq"]
        if seq != expected:
            result.add(expected, "missing", f"#{expected} is not in the export (next is #{seq})")
        if fields["prev_hash"] != previous:
            result.add(seq, "link_broken", f"#{seq} does not follow the event before it")
        details = fields.pop("details")
        digest = fields.pop("hash")
        fields["details"] = details if isinstance(details, str) else details_text(details)
        fields["occurred_at"] = fields.pop("at")
        if event_hash(**fields) != digest:
            result.add(seq, "altered", f"#{seq}'s content does not give its hash")
        elif "class_uid" in record and _ocsf_rebuilt(record, fields, digest) != record:
            # What a SIEM indexes (time, status, message...) is derived from the hashed fields.
            result.add(seq, "altered", f"#{seq}'s OCSF fields do not match its hashed content")
        at = str(fields["occurred_at"])
        if previous_at is not None and at < previous_at:  # time_text's UTC text, one width: in order
            result.add(seq, "time_reversed", f"#{seq} is dated {at}, before #{seq - 1} ({previous_at})")
        hashes[seq] = digest
        previous, expected, previous_at = digest, seq + 1, at
        result.events += 1
        result.last_seq, result.last_hash = seq, digest
    if result is None:
        result = Verification(int(signed[0]["tenant_id"]) if signed else 0)
    first = min(hashes, default=0)
    for checkpoint in signed:
        seq = checkpoint["seq"]
        ids = chains | {result.tenant_id}
        if int(checkpoint["tenant_id"]) not in ids or not checkpoint_signed(
            checkpoint, chain_ids=ids, hash_id=result.tenant_id, keys=keys
        ):
            result.add(seq, "signature_invalid", f"the checkpoint of #{seq} is not signed by a platform key")
            continue
        if not hashes or seq < first - 1:
            continue  # vouches for events of an earlier export
        vouched = first_prev if seq == first - 1 else hashes.get(seq)
        if seq > result.last_seq:
            result.add(
                result.last_seq + 1,
                "truncated",
                f"a signed checkpoint vouches for #{seq}; the export ends at #{result.last_seq}",
            )
        elif vouched != checkpoint["hash"]:
            result.add(seq, "rewritten", f"#{seq} does not have the hash the platform signed")
        else:
            result.checkpoints += 1
            result.signed_seq = max(result.signed_seq, seq)
    return result
