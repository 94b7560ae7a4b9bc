"""The chain's canonical form, shared by the SQL that appends (migrations/0002, `audit_canonical`)
and the Python that verifies; the two must produce the same bytes.

An event's hash is SHA-256 (hex) of the UTF-8 bytes of its fields as netstrings
(`<length in characters>:<text>,`), in this order: format version, tenant id, seq, time
(UTC, `YYYY-MM-DDTHH:MM:SS.ffffffZ`), actor type, actor id, action, target type, target id,
outcome, IP, user agent, request id, details (canonical JSON: sorted keys, no spaces, UTF-8),
previous hash. The first event's previous hash is 64 zeros. Lengths make the form unambiguous
whatever the fields contain.

A signed checkpoint signs `checkpoint_message`: the chain, the id it is hashed under, seq, hash
and signing time.
"""

import hashlib
import json
import math
from collections.abc import Iterable
from datetime import UTC, datetime

VERSION = "1"
GENESIS = "0" * 64


def netstrings(values: Iterable[str]) -> str:
    return "".join(f"{len(value)}:{value}," for value in values)


def time_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def details_text(details: dict | None) -> str:
    """Canonical JSON: a non-finite number (which JSON has not: Python would write `Infinity`) is
    written as its text ("inf", "nan")."""
    details = details or {}
    try:
        return _details_json(details)
    except ValueError as exc:
        if "Out of range float" not in str(exc):
            raise
        return _details_json(_finite(details))


def _details_json(details) -> str:
    return json.dumps(details, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str, allow_nan=False)


def _finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def event_hash(
    *,
    tenant_id: int,
    seq: int,
    occurred_at: datetime | str,  # or already as time_text gives it
    actor_type: str,
    actor_id: str,
    action: str,
    target_type: str,
    target_id: str,
    outcome: str,
    ip: str,
    user_agent: str,
    request_id: str,
    details: str,
    prev_hash: str,
) -> str:
    payload = netstrings(
        (
            VERSION,
            str(tenant_id),
            str(seq),
            occurred_at if isinstance(occurred_at, str) else time_text(occurred_at),
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
        )
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


CHECKPOINT_VERSION = "2"


def checkpoint_message(
    *, chain_id: int, tenant_id: int, seq: int, hash: str, signed_at: datetime, version: str = CHECKPOINT_VERSION
) -> bytes:
    """What a checkpoint's signature is over. Version 2 names the chain the checkpoint is for
    (`chain_id`, the id it is stored under) and the id its events are hashed under (`tenant_id`:
    an imported chain keeps its first tenant's). Version 1, signed before December 2026, named the
    hashed-as id alone — which a chain's base row, the app role's to write, could make another
    chain's, for the platform to sign a checkpoint that chain then took for its own."""
    if version == "1":
        fields = ("foundry-audit-checkpoint", "1", str(tenant_id), str(seq), hash, time_text(signed_at))
    else:
        fields = ("foundry-audit-checkpoint", "2", str(chain_id), str(tenant_id), str(seq), hash, time_text(signed_at))
    return netstrings(fields).encode()
