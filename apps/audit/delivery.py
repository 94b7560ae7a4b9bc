"""Push delivery of each tenant's chain to its SIEM sinks: syslog over TCP (RFC 5424 messages,
RFC 6587 octet-counting frames, optionally TLS) or an HTTPS webhook (a JSON batch per POST).

At least once, never skipping: a sink's `cursor` is the last sequence number its receiver
acknowledged, and it moves only after the acknowledgement, by compare-and-set (so a concurrent
configuration change — a rewound cursor, a new destination — is never overwritten). A restart
resends at most the batch that was in flight; every event carries its stable id `<chain>:<seq>`
so the receiver drops what it already has.

What counts as acknowledged:
- webhook: a 2xx answer to the POST (redirects are not followed);
- syslog: TCP has no application acknowledgement, and bytes written to a socket whose reader
  just died are silently lost. So each batch has a connection of its own: the frames are
  written, the sender half-closes (TLS: close_notify), and the batch counts only when the
  receiver has closed its side after reading to the end and its TCP stack has acknowledged
  every byte (Linux TIOCOUTQ is 0, no reset). A receiver that died mid-batch resets the
  connection instead; one that never closes leaves the batch unconfirmed (resent later). A
  receiver (or a TLS relay before it) stopped gracefully mid-batch, dropping what it had taken
  off the connection without a reset, is indistinguishable from one that read it all: syslog
  has no acknowledgement of its own (docs/audit-siem.md says so; the webhook has one).

Destinations are checked like agent HTTP tools (foundry/runtime/network.py): every address a
name resolves to must be public unless the operator allowed its network (the platform-wide
FOUNDRY_HTTP_TOOL_ALLOWED_NETWORKS and the tenant's own `http_allowed_networks`), and the
connection goes to the checked address, TLS verified on the name.

Two workers never deliver one sink at once (a Redis lock per sink); a failed batch is retried
a few times at once, then the sink backs off exponentially across beat runs.
"""

import contextlib
import dataclasses
import fcntl
import hashlib
import hmac
import ipaddress
import logging
import re
import socket
import ssl
import struct
import termios
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import certifi
import httpx
from celery.exceptions import SoftTimeLimitExceeded
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.http import HttpRequest
from django.utils import timezone
from django_redis import get_redis_connection
from redis.exceptions import LockError, RedisError

from apps.accounts.permissions import Permission
from apps.accounts.services import allowed_now
from apps.audit.chain import time_text
from apps.audit.export import chain_head, event_id, event_record, events_hashed_as, json_text
from apps.audit.models import AuditEvent, AuditSink, Outcome
from apps.audit.scope import rls_scope
from apps.audit.services import audit_record
from apps.providers.encryption import (
    SecretUndecryptable,
    secret_decrypt,
    secret_encrypt,
    secret_is_current,
    secret_place,
    secret_rotate,
)
from apps.tenants import limits
from apps.tenants.models import Domain, Tenant
from foundry.db.locks import xact_lock
from foundry.errors import CodedError, ServiceError
from foundry.ratelimit import limit_key
from foundry.runtime.network import (
    FetchError,
    NetworkPolicy,
    address_refusal,
    deadline_client,
    literal_address,
    resolver_bounded,
)
from foundry.runtime.network import _check as http_hop_check

logger = logging.getLogger(__name__)

MAX_SINKS = 10  # per tenant
SYSLOG_BATCH = 500  # events per connection
WEBHOOK_BATCH = 200  # events per POST
IO_TIMEOUT = 10.0  # connect, each read/write, and the wait for the receiver's close
RUN_BUDGET = 60.0  # seconds one delivery run may start new batches for; the next beat goes on
RETRY_DELAYS = (1.0, 4.0)  # a failed batch is retried after these pauses within the run
# The delivery task's hard time limit (tasks.py; its soft limit a minute earlier): no run outlasts
# it, so the delivery slots a run holds (`_delivery_slots`) are leased for that long.
RUN_TIME_LIMIT = 360
BACKOFF_BASE = 30.0  # then the sink waits 30 s, 60 s, 120 s … between runs
BACKOFF_MAX = 3600.0
SYSLOG_FACILITY = 13  # "log audit" (RFC 5424 table 1)
SD_ID = "foundry@32473"  # 32473: the documentation enterprise number (RFC 5612)
APP_NAME = "agent-foundry"
USER_AGENT = "AgentFoundry/1 (+audit delivery)"
SIGNATURE_HEADER = "X-Foundry-Signature"

_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9_-]{0,62})\Z")
_HOSTNAME = re.compile(r"^(?=.{1,253}\Z)(?!-)[a-z0-9-]{1,63}(?<!-)(?:\.(?!-)[a-z0-9-]{1,63}(?<!-))*\.?\Z")
_SECRET = re.compile(r"^[\x21-\x7e]{16,500}\Z")
MAX_CA_CHARS = 65536


class DeliveryError(CodedError):
    """A batch the receiver did not acknowledge. `code` is stable; `message` plain."""


@dataclass(frozen=True)
class Delivery:
    """The outcome of one run for one sink."""

    sink: str
    status: str  # delivered | idle | busy | deferred | waiting | disabled | suspended | failed | changed | gone
    delivered: int = 0  # events acknowledged in this run
    cursor: int = 0
    error: DeliveryError | None = None


# --- configuration --------------------------------------------------------------------------


def sink_policy(tenant: Tenant) -> NetworkPolicy:
    """Where this tenant's sinks may connect: public addresses plus the networks operators allowed,
    read from its stored row (a request's tenant is the router's partial copy, without them)."""
    stored = Tenant.objects.filter(pk=tenant.pk).first() or tenant
    networks = list(settings.FOUNDRY_HTTP_TOOL_ALLOWED_NETWORKS) + stored.http_networks()
    return NetworkPolicy(allowed_networks=tuple(networks))


def _invalid(code: str, message: str) -> ValidationError:
    return ValidationError(message, code=code)


def _literal_refusal(host: str, policy: NetworkPolicy) -> ValidationError | None:
    """A literal IP the policy refuses, in any spelling a resolver reads as one (names are checked
    after resolution, at every delivery)."""
    ip = literal_address(host)
    if ip is None:
        return None
    refused = address_refusal(ip, policy)
    if refused:
        return _invalid(
            "sink_address_refused",
            f"{ip} is a {refused} address; sinks reach it only when the operator allows its network.",
        )
    return None


def _host_problem(host: str, policy: NetworkPolicy) -> ValidationError | None:
    if not host:
        return _invalid("host_required", "A syslog sink needs the receiver's host name or address.")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not _HOSTNAME.match(host):
            return _invalid("host_invalid", "A host name (letters, digits, '-', '.') or an IP address.")
    return _literal_refusal(host, policy)


def _url_problem(url: str, policy: NetworkPolicy) -> ValidationError | None:
    if not url:
        return _invalid("url_required", "A webhook sink needs its https URL.")
    if len(url) > 500 or any(ord(c) < 33 or ord(c) == 127 for c in url):
        return _invalid("url_invalid", "A URL of at most 500 characters, without spaces.")
    try:
        parts = urlsplit(url)
        port = parts.port
        # The host as delivery's client reads it (IDNA: `127。0。0。1` is 127.0.0.1), not as typed.
        host = httpx.URL(url).host or parts.hostname
    except (ValueError, httpx.InvalidURL):
        return _invalid("url_invalid", "This is not a valid URL.")
    if port == 0:
        return _invalid("url_invalid", "A port from 1 to 65535.")
    if parts.scheme == "http":
        return _invalid("url_insecure", "Use https: audit events must not cross the network in clear.")
    if parts.scheme != "https" or not host:
        return _invalid("url_invalid", "Use an https URL such as https://siem.example.com/ingest.")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        return _invalid("url_invalid", "Put no credentials in the URL; set a signing secret instead.")
    if parts.fragment or url.endswith("#"):
        return _invalid("url_invalid", "A webhook URL has no fragment.")
    return _literal_refusal(host, policy)


def ca_certificates_pem(pem: str) -> str:
    """The certificates of `pem` as the TLS stack reads them: each block re-encoded, without the
    text around them (comments, indentation pasted from YAML or e-mail). Raises ValidationError."""
    if len(pem) > MAX_CA_CHARS:
        raise _invalid("ca_certificate_invalid", f"At most {MAX_CA_CHARS} characters of PEM.")
    try:
        certificates = x509.load_pem_x509_certificates(pem.encode("utf-8"))
        clean = "".join(c.public_bytes(serialization.Encoding.PEM).decode("ascii") for c in certificates)
        ssl.create_default_context(cadata=clean)  # what delivery will do with them
    except (ValueError, UnicodeError, TypeError, ssl.SSLError):
        message = "PEM certificates (-----BEGIN CERTIFICATE-----) are expected."
        raise _invalid("ca_certificate_invalid", message) from None
    return clean


def _ca_problem(pem: str) -> ValidationError | None:
    try:
        ca_certificates_pem(pem)
    except ValidationError as error:
        return error
    return None


@dataclass(frozen=True)
class SinkFields:
    kind: str
    format: str = AuditSink.Format.JSONL
    enabled: bool = True
    host: str = ""
    port: int | None = None
    tls: bool | None = None  # None: not given (syslog: on)
    ca_certificate: str = ""
    url: str = ""
    secret: str | None = None  # None: keep the stored one; "": remove it
    cursor: int | None = None  # None: keep (new sinks: 0, the whole chain)


def _validate(name: str, fields: SinkFields, *, policy: NetworkPolicy, head: int) -> None:
    errors: dict[str, ValidationError] = {}
    if not _NAME.match(name):
        errors["name"] = _invalid("name_invalid", "1 to 63 lowercase letters, digits, '-' or '_'.")
    if fields.kind not in AuditSink.Kind.values:
        errors["kind"] = _invalid("kind_invalid", f"kind is one of {', '.join(AuditSink.Kind.values)}.")
    if fields.format not in AuditSink.Format.values:
        errors["format"] = _invalid("format_invalid", f"format is one of {', '.join(AuditSink.Format.values)}.")
    unsupported = []
    if fields.kind == AuditSink.Kind.SYSLOG:
        if problem := _host_problem(fields.host, policy):
            errors["host"] = problem
        if fields.port is not None and not 1 <= fields.port <= 65535:
            errors["port"] = _invalid("port_invalid", "A TCP port: 1 to 65535.")
        unsupported = [n for n in ("url", "secret") if getattr(fields, n)]
        if fields.ca_certificate and fields.tls is False:
            unsupported.append("ca_certificate")
    elif fields.kind == AuditSink.Kind.WEBHOOK:
        if problem := _url_problem(fields.url, policy):
            errors["url"] = problem
        if fields.secret and not _SECRET.match(fields.secret):
            errors["secret"] = _invalid("secret_invalid", "16 to 500 printable characters, without spaces.")
        unsupported = [n for n in ("host", "port") if getattr(fields, n)]
        if fields.tls is not None:
            unsupported.append("tls")
    for field in unsupported:
        errors.setdefault(field, _invalid("field_not_supported", f"A {fields.kind} sink takes no {field}."))
    if fields.ca_certificate and "ca_certificate" not in errors and (problem := _ca_problem(fields.ca_certificate)):
        errors["ca_certificate"] = problem
    if fields.cursor is not None and not 0 <= fields.cursor <= head:
        errors["cursor"] = _invalid("cursor_invalid", f"A sequence number from 0 to the chain's head (#{head}).")
    if errors:
        raise ValidationError(errors)


def sinks_imported_problem(tenant: Tenant) -> str | None:
    """What is wrong with the sinks an archive brought `tenant` (its import's transaction): each
    held to the rules `audit_sink_set` holds a sink to, their secrets aside (sealed for the
    archive's rows, they are left behind) and their addresses too (which networks the copy may
    reach is its operators' to allow; delivery checks every address it connects to). None when
    every one keeps them."""
    policy = NetworkPolicy(allowed_networks=(ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0")))
    head = chain_head(tenant.pk)
    with rls_scope(tenant.pk):
        sinks = list(AuditSink.objects.filter(tenant_id=tenant.pk).order_by("pk"))
    for sink in sinks:
        fields = SinkFields(
            kind=sink.kind,
            format=sink.format,
            host=sink.host,
            port=sink.port,
            tls=sink.tls if sink.kind == AuditSink.Kind.SYSLOG else None,
            ca_certificate=sink.ca_certificate,
            url=sink.url,
            cursor=sink.cursor,
        )
        try:
            _validate(sink.name, fields, policy=policy, head=head)
        except ValidationError as invalid:
            field, (error, *_) = next(iter(invalid.error_dict.items()))
            return f"The audit sink {sink.name[:63]!r}: {field}: {error.message}"
    return None


def _check_actor(actor: object) -> None:
    if hasattr(actor, "has_permission") and not actor.has_permission(Permission.SETTINGS_MANAGE):
        raise PermissionDenied("Your role does not allow managing audit sinks.")


def _audit_data(sink: AuditSink) -> dict:
    """What the audit trail says of a sink: never the secret, nor a URL's path (it may hold a token)."""
    data = {"name": sink.name, "kind": sink.kind, "format": sink.format, "enabled": sink.enabled}
    if sink.kind == AuditSink.Kind.WEBHOOK:
        parts = urlsplit(sink.url)
        data |= {"url_host": parts.netloc, "signed": sink.has_secret}
    else:
        data |= {"host": sink.host, "port": sink.port, "tls": sink.tls}
    return data | {"ca_certificate": bool(sink.ca_certificate)}


def audit_sink_list(tenant_id: int) -> list[AuditSink]:
    with rls_scope(tenant_id):
        return list(AuditSink.objects.filter(tenant_id=tenant_id).order_by("name"))


def _sink_named(tenant_id: int, name: str, *, for_update: bool = False) -> AuditSink | None:
    """The sink `name`, or None; a name no sink can have (a NUL, which PostgreSQL would refuse in
    the lookup itself, a '.', 64 characters...) is looked up nowhere."""
    if not _NAME.match(name):
        return None
    sinks = AuditSink.objects.select_for_update() if for_update else AuditSink.objects
    return sinks.filter(tenant_id=tenant_id, name=name).first()


def audit_sink_get(tenant_id: int, name: str) -> AuditSink:
    with rls_scope(tenant_id):
        sink = _sink_named(tenant_id, name)
    if sink is None:
        raise ServiceError("sink_not_found", f"No audit sink named {name[:63]!r}.", status=404)
    return sink


def sink_secret_place(sink: AuditSink) -> str:
    """A sink's secret opens only in its row: this workspace's sink of this name."""
    return secret_place(AuditSink._meta.db_table, f"{sink.tenant_id}/{sink.name}", schema="public")


def sink_secrets_rotate(tenant_id: int) -> tuple[int, int, list[str]]:
    """Re-encrypt the workspace's webhook sink secrets under the first FOUNDRY_ENCRYPTION_KEYS key
    (idempotent; `rotate_encryption_keys`): (re-encrypted, already current, names undecryptable)."""
    rotated, current, undecryptable = 0, 0, []
    with transaction.atomic(), rls_scope(tenant_id):
        for sink in AuditSink.objects.select_for_update().filter(tenant_id=tenant_id).exclude(secret_encrypted=""):
            if secret_is_current(sink.secret_encrypted, place=sink_secret_place(sink)):
                current += 1
                continue
            try:
                sink.secret_encrypted = secret_rotate(sink.secret_encrypted, place=sink_secret_place(sink))
            except SecretUndecryptable:
                undecryptable.append(f"sink {sink.name}")
                continue
            sink.save(update_fields=["secret_encrypted"])
            rotated += 1
    return rotated, current, undecryptable


def audit_sink_set(
    *,
    tenant: Tenant,
    name: str,
    fields: SinkFields,
    actor: object,
    request: HttpRequest | None = None,
    exists: bool | None = None,
) -> AuditSink:
    """Create or replace the sink `name` of `tenant` (a replace starts over: no back-off).
    `exists` True: only replace (`sink_not_found` if it is gone); False: only create
    (`sink_name_taken` if there is one) — decided under the workspace's sink lock, so a form that
    adds, or edits, never does the other when two admins save at once. The sink returned says
    whether this call created it (`just_created`)."""
    _check_actor(actor)
    fields = dataclasses.replace(fields, host=fields.host.strip().lower(), url=fields.url.strip())
    with rls_scope(tenant.pk):
        xact_lock(f"audit.sinks:{tenant.pk}")  # one change of the workspace's sinks at a time: the cap holds
        actor = allowed_now(actor, Permission.SETTINGS_MANAGE)  # as they stand now, not as the request began
        sink = _sink_named(tenant.pk, name, for_update=True)
        if exists is True and sink is None:
            raise ServiceError("sink_not_found", f"No audit sink named {name[:63]!r}.", status=404)
        if exists is False and sink is not None:
            raise ServiceError("sink_name_taken", f"An audit sink is named {name[:63]!r}.", status=409)
        _validate(name, fields, policy=sink_policy(tenant), head=chain_head(tenant.pk))
        created = sink is None
        if created:
            if AuditSink.objects.filter(tenant_id=tenant.pk).count() >= MAX_SINKS:
                raise ServiceError("sink_limit", f"A workspace has at most {MAX_SINKS} audit sinks.", status=409)
            sink = AuditSink(tenant_id=tenant.pk, name=name, created_by=str(actor)[:255])
        syslog = fields.kind == AuditSink.Kind.SYSLOG
        tls = fields.tls is not False if syslog else True
        sink.kind, sink.format, sink.enabled = fields.kind, fields.format, fields.enabled
        sink.host = fields.host if syslog else ""
        sink.port = (fields.port or (6514 if tls else 601)) if syslog else None
        sink.tls = tls
        sink.url = "" if syslog else fields.url
        sink.ca_certificate = ca_certificates_pem(fields.ca_certificate) if fields.ca_certificate else ""
        if syslog or fields.secret == "":
            sink.secret_encrypted = ""
        elif fields.secret:
            sink.secret_encrypted = secret_encrypt(fields.secret, place=sink_secret_place(sink))
        if fields.cursor is not None:
            sink.cursor = fields.cursor
        sink.failures, sink.next_attempt_at, sink.last_error_code, sink.last_error = 0, None, "", ""
        sink.updated_by, sink.updated_at = str(actor)[:255], timezone.now()
        try:
            with transaction.atomic():  # a concurrent first set of the same name
                sink.save()
        except IntegrityError:
            raise ServiceError(
                "sink_conflict", "Someone else saved this sink at the same moment; try again.", status=409
            ) from None
        data = _audit_data(sink) | {"created": created}
        if fields.cursor is not None:
            data["cursor"] = fields.cursor
        target = ("audit_sink", name)
        audit_record(action="audit.sink.set", actor=actor, target=target, data=data, request=request, chain=tenant.pk)
    sink.just_created = created
    return sink


def audit_sink_delete(*, tenant: Tenant, name: str, actor: object, request: HttpRequest | None = None) -> None:
    _check_actor(actor)
    with rls_scope(tenant.pk):
        actor = allowed_now(actor, Permission.SETTINGS_MANAGE)  # as they stand now, not as the request began
        sink = _sink_named(tenant.pk, name, for_update=True)
        if sink is None:
            raise ServiceError("sink_not_found", f"No audit sink named {name[:63]!r}.", status=404)
        data = {"name": sink.name, "kind": sink.kind, "cursor": sink.cursor}
        sink.delete()
        target = ("audit_sink", name)
        audit_record(
            action="audit.sink.delete", actor=actor, target=target, data=data, request=request, chain=tenant.pk
        )


# --- wire formats ---------------------------------------------------------------------------

_MSGID_UNSAFE = re.compile(r"[^\x21-\x7e]")


def _sd_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def syslog_frame(event: AuditEvent, fmt: str, hostname: str) -> bytes:
    """One event as an RFC 5424 message (its JSON record as MSG) in an RFC 6587 octet-counted frame."""
    severity = 6 if event.outcome == Outcome.SUCCESS else 4  # informational / warning
    msgid = _MSGID_UNSAFE.sub("_", event.action)[:32] or "-"
    uid = event_id(event)
    structured = (
        f'[{SD_ID} id="{_sd_value(uid)}" chain="{event.tenant_id}" seq="{event.seq}"'
        f' outcome="{_sd_value(event.outcome)}"]'
    )
    header = f"<{SYSLOG_FACILITY * 8 + severity}>1 {time_text(event.occurred_at)} {hostname} {APP_NAME} - {msgid} "
    body = json_text(event_record(event, fmt))
    # The header is ASCII (PRINTUSASCII); a PARAM-VALUE and the MSG are UTF-8 (RFC 5424 6.3.3, 6.4).
    message = header.encode("ascii") + (structured + " ").encode("utf-8") + b"\xef\xbb\xbf" + body.encode("utf-8")
    return b"%d " % len(message) + message


def webhook_body(sink: AuditSink, events: Sequence[AuditEvent]) -> bytes:
    body = {
        "sink": sink.name,
        "chain": sink.tenant_id,
        "format": sink.format,
        "first_seq": events[0].seq,
        "last_seq": events[-1].seq,
        "events": [event_record(event, sink.format) for event in events],
    }
    return json_text(body).encode("utf-8")


def webhook_signature(secret: str, body: bytes, timestamp: int) -> str:
    """`t=<unix time>,v1=<hex HMAC-SHA256 of "<t>." + body>`, as the receiver recomputes it."""
    digest = hmac.new(secret.encode("utf-8"), b"%d." % timestamp + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


# --- transport ------------------------------------------------------------------------------


def _resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return list(dict.fromkeys(info[4][0] for info in infos))


def _resolve_bounded(host: str, port: int) -> list[str]:
    """The sink host's addresses, answered within IO_TIMEOUT (getaddrinfo has no time limit of
    its own: a DNS server that never answers would hold the run past its lock); OSError if not."""
    try:
        return resolver_bounded(_resolve, time.monotonic() + IO_TIMEOUT, IO_TIMEOUT)(host, port)
    except FetchError as exc:
        raise OSError(exc.message) from None


def _tls_context(ca_certificate: str) -> ssl.SSLContext:
    """Verification on: the sink's own CA certificates if it has them, else the public CAs."""
    if ca_certificate:
        try:
            return ssl.create_default_context(cadata=ca_certificate)
        except (ssl.SSLError, TypeError, ValueError):  # stored before saving checked what ssl reads
            raise DeliveryError(
                "ca_certificate_invalid", "The sink's CA certificates cannot be loaded; save them again."
            ) from None
    return ssl.create_default_context(cafile=certifi.where())


def _addresses(host: str, port: int, policy: NetworkPolicy) -> list[str]:
    try:
        addresses = [ipaddress.ip_address(a.split("%")[0]) for a in _resolve_bounded(host, port)]
    except (OSError, UnicodeError, ValueError) as exc:
        raise DeliveryError("sink_dns_failed", f"Could not resolve {host!r}: {exc}.") from None
    if not addresses:
        raise DeliveryError("sink_dns_failed", f"{host!r} has no address.")
    for ip in addresses:
        if refused := address_refusal(ip, policy):
            raise DeliveryError("sink_address_refused", f"{host!r} resolves to {ip}, a {refused} address.")
    return [str(ip) for ip in addresses]


def _unacknowledged(sock: socket.socket) -> int | None:
    """Bytes sent but not yet acknowledged by the peer's TCP (None where the OS cannot say)."""
    request = getattr(termios, "TIOCOUTQ", None)
    if request is None:
        return None
    return struct.unpack("i", fcntl.ioctl(sock.fileno(), request, b"\0\0\0\0"))[0]


def _confirm(sock: socket.socket, deadline: float) -> None:
    """Half-close, then wait until the receiver has read everything and closed (see the module doc)."""
    if isinstance(sock, ssl.SSLSocket):
        with contextlib.suppress(ssl.SSLEOFError):  # closed without its own close_notify: fine
            sock.unwrap()
    else:
        sock.shutdown(socket.SHUT_WR)
        while sock.recv(4096):  # a syslog receiver sends nothing; ignore whatever it does, for a while
            if time.monotonic() > deadline:
                raise TimeoutError("the receiver did not close the connection")
    while True:
        unacknowledged = _unacknowledged(sock)
        if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
            raise ConnectionResetError("the receiver reset the connection")
        if not unacknowledged:
            return
        if time.monotonic() > deadline:
            raise TimeoutError("the receiver did not acknowledge every byte")
        time.sleep(0.005)


def syslog_send(sink: AuditSink, frames: Sequence[bytes], policy: NetworkPolicy, *, timeout: float) -> None:
    addresses = _addresses(sink.host, sink.port, policy)
    sock, failure = None, None
    connect_by = time.monotonic() + timeout  # every address tried within one timeout, not one each
    for address in addresses:
        left = connect_by - time.monotonic()
        if left <= 0:
            break
        try:
            sock = socket.create_connection((address, sink.port), timeout=min(timeout, left))
            break
        except OSError as exc:
            failure = exc
    if sock is None:
        raise DeliveryError("syslog_connect_failed", f"Could not connect to {sink.destination}: {failure}.")
    try:
        if sink.tls:
            try:
                # A fully qualified name's final dot is no part of the name certificates carry.
                name = sink.host.rstrip(".")
                sock = _tls_context(sink.ca_certificate).wrap_socket(sock, server_hostname=name)
            except (ssl.SSLError, OSError) as exc:
                raise DeliveryError("syslog_tls_failed", f"TLS with {sink.destination} failed: {exc}.") from None
        try:
            sock.sendall(b"".join(frames))
        except OSError as exc:
            raise DeliveryError("syslog_send_failed", f"Sending to {sink.destination} failed: {exc}.") from None
        try:
            _confirm(sock, time.monotonic() + timeout)
        except OSError as exc:
            raise DeliveryError(
                "syslog_unconfirmed", f"{sink.destination} did not confirm it read the batch: {exc}."
            ) from None
    finally:
        sock.close()


_FETCH_CODES = {"http_address_refused": "sink_address_refused", "http_dns_failed": "sink_dns_failed"}


def webhook_send(sink: AuditSink, body: bytes, policy: NetworkPolicy, *, timeout: float) -> None:
    url = httpx.URL(sink.url)
    host = url.raw_host.decode("ascii").lower().rstrip(".")
    try:
        hop = http_hop_check(url, [host], policy, _resolve_bounded)
    except FetchError as exc:
        raise DeliveryError(_FETCH_CODES.get(exc.code, "webhook_failed"), exc.message) from None
    headers = {"Host": hop.host_header, "User-Agent": USER_AGENT, "Content-Type": "application/json"}
    if sink.secret_encrypted:
        headers[SIGNATURE_HEADER] = webhook_signature(
            secret_decrypt(sink.secret_encrypted, place=sink_secret_place(sink)), body, int(time.time())
        )
    extensions = {"sni_hostname": hop.sni} if hop.sni else None
    # Connect, send and the answer's head within 3 x timeout in all (a receiver trickling its
    # answer cannot stretch an attempt: the sink's lock and run budget count on this bound).
    deadline = time.monotonic() + 3 * timeout
    with deadline_client(deadline, verify=_tls_context(sink.ca_certificate)) as client:
        request = client.build_request(
            "POST", hop.url, content=body, headers=headers, timeout=httpx.Timeout(timeout), extensions=extensions
        )
        try:
            response = client.send(request, stream=True)
            response.close()
        except httpx.TimeoutException:
            raise DeliveryError("webhook_failed", f"{host!r} did not answer within {3 * timeout:g} s.") from None
        except httpx.HTTPError as exc:
            raise DeliveryError("webhook_failed", f"POST to {host!r} failed: {exc}.") from None
    if response.status_code == 413:  # its body limit: a smaller batch may pass (`_deliver`)
        raise DeliveryError("webhook_too_large", f"{host!r} answered 413: the batch is larger than it takes.")
    if not 200 <= response.status_code < 300:
        raise DeliveryError("webhook_rejected", f"{host!r} answered {response.status_code}, not 2xx.")


# --- delivery runs --------------------------------------------------------------------------


def _backoff(failures: int) -> timedelta:
    return timedelta(seconds=min(BACKOFF_BASE * 2 ** min(failures - 1, 20), BACKOFF_MAX))


def _hostname(tenant_id: int) -> str:
    domain = Domain.objects.filter(tenant_id=tenant_id, is_primary=True).values_list("domain", flat=True).first()
    return (domain or f"tenant-{tenant_id}")[:255]


def _send(sink: AuditSink, events: list[AuditEvent], policy: NetworkPolicy, hostname: str) -> None:
    if sink.kind == AuditSink.Kind.WEBHOOK:
        webhook_send(sink, webhook_body(sink, events), policy, timeout=IO_TIMEOUT)
    else:
        syslog_send(sink, [syslog_frame(e, sink.format, hostname) for e in events], policy, timeout=IO_TIMEOUT)


def _sink_lock(sink_id: int, seconds: float):
    return get_redis_connection("default").lock(
        f"foundry:audit-sink-lock:{sink_id}", timeout=seconds, blocking=False, thread_local=False
    )


def sink_deliver(
    *,
    tenant_id: int,
    sink_id: int,
    batch: int | None = None,
    retry_delays: Sequence[float] = RETRY_DELAYS,
    budget: float = RUN_BUDGET,
    force: bool = False,
) -> Delivery:
    """Deliver the sink's pending events, batch by batch, until none is left, a batch fails, or
    the run's time budget is spent. `force` ignores a pending back-off."""
    # An attempt: the name lookup, connect, TLS handshake, send and the receiver's confirmation
    # (which may take two reads), each within IO_TIMEOUT. The lock lasts one batch with its
    # retries, and is renewed before each batch: a run is never left without it, however many
    # batches its budget lets it send.
    per_batch = (len(retry_delays) + 1) * 6 * IO_TIMEOUT + sum(retry_delays)
    with _delivery_slots(tenant_id) as held:
        if not held:
            return Delivery(str(sink_id), "deferred")
        lock = _sink_lock(sink_id, per_batch + 30)
        try:
            if not lock.acquire(blocking=False):
                return Delivery(str(sink_id), "busy")
        except RedisError:
            return Delivery(str(sink_id), "busy")
        try:
            return _deliver(
                tenant_id, sink_id, lock=lock, batch=batch, retry_delays=retry_delays, budget=budget, force=force
            )
        finally:
            with contextlib.suppress(LockError, RedisError):
                lock.release()


@contextlib.contextmanager
def _delivery_slots(tenant_id: int) -> Iterator[bool]:
    """One of the workspace's delivery slots and one of the platform's, held for the run (True),
    or none (False: another run holds them, or Redis cannot be asked). A delivery holds a worker
    process for as long as the receiver takes to answer, up to the run's budget and a last batch;
    without these, one workspace's slow receivers (up to MAX_SINKS of them), or a few workspaces',
    held every worker process, and other workspaces' runs waited queued behind them."""
    limiter = limits.limiter()
    leases = []
    try:
        for key, capacity in (
            (limit_key("siem", str(tenant_id)), settings.FOUNDRY_AUDIT_DELIVERIES_PER_WORKSPACE),
            (limit_key("siem", "all"), settings.FOUNDRY_AUDIT_DELIVERIES_MAX),
        ):
            lease = limiter.acquire(key, capacity, RUN_TIME_LIMIT)
            if lease is None:
                break
            leases.append((key, lease))
        yield len(leases) == 2
    finally:
        for key, lease in leases:
            limiter.release(key, lease)  # Redis away: the lease runs out by itself


def _deliver(tenant_id: int, sink_id: int, *, lock, batch, retry_delays, budget: float, force: bool) -> Delivery:
    started, delivered, sent = time.monotonic(), 0, False
    hostname = _hostname(tenant_id)
    while True:
        if sent:
            # Renewed for the next batch (a halved one too: a receiver answering 413 slowly held
            # a run past the lock); gone (it expired) means another worker may be delivering
            # this sink now: this run stops rather than send beside it.
            try:
                lock.reacquire()
            except (LockError, RedisError):
                return Delivery(str(sink_id), "busy", delivered)
        # Read again before every batch: a workspace suspended meanwhile gets no further one.
        tenant = Tenant.objects.filter(pk=tenant_id).first()
        with rls_scope(tenant_id):
            sink = AuditSink.objects.filter(tenant_id=tenant_id, pk=sink_id).first()
            if sink is None or tenant is None:
                return Delivery(str(sink_id), "gone", delivered)
            if not tenant.is_active:
                return Delivery(sink.name, "suspended", delivered, sink.cursor)
            size = batch or (WEBHOOK_BATCH if sink.kind == AuditSink.Kind.WEBHOOK else SYSLOG_BATCH)
            pending = AuditEvent.objects.filter(tenant_id=tenant_id, seq__gt=sink.cursor).order_by("seq")
            events = events_hashed_as(tenant_id, list(pending[:size]))
        if not sink.enabled:
            return Delivery(sink.name, "disabled", delivered, sink.cursor)
        waiting = sink.next_attempt_at is not None and sink.next_attempt_at > timezone.now()
        if waiting and not force and not delivered:
            return Delivery(sink.name, "waiting", delivered, sink.cursor)
        if not events:
            return Delivery(sink.name, "delivered" if delivered else "idle", delivered, sink.cursor)
        error = _attempt(sink, events, sink_policy(tenant), hostname, retry_delays)
        sent = True
        if error is not None and error.code == "webhook_too_large" and len(events) > 1:
            batch = len(events) // 2  # halved until the receiver takes one, for the rest of this run
            if time.monotonic() - started > budget:
                return Delivery(sink.name, "delivered", delivered, sink.cursor)
            continue
        if error is not None:
            _failed(sink, error)
            return Delivery(sink.name, "failed", delivered, sink.cursor, error)
        if not _advance(sink, events[-1].seq):
            return Delivery(sink.name, "changed", delivered, sink.cursor)  # reconfigured meanwhile
        delivered += len(events)
        if time.monotonic() - started > budget:
            return Delivery(sink.name, "delivered", delivered, events[-1].seq)


def _attempt(
    sink: AuditSink, events: list[AuditEvent], policy: NetworkPolicy, hostname: str, retry_delays: Sequence[float]
) -> DeliveryError | None:
    """Send one batch, retrying after each pause in `retry_delays`; the last error, or None."""
    error = None
    for pause in (0.0, *retry_delays):
        try:
            time.sleep(pause)
            _send(sink, events, policy, hostname)
            return None
        except DeliveryError as exc:
            error = exc
            if exc.code == "webhook_too_large":  # the same batch again would be refused again
                break
        except ServiceError as exc:  # the webhook secret cannot be decrypted
            error = DeliveryError(exc.code, exc.message)
            break
        except SoftTimeLimitExceeded:  # the task's, raised wherever the send or its pause was
            logger.warning("audit sink %s: the delivery run reached its time limit while sending", sink.pk)
            error = DeliveryError("sink_time_limit", "The delivery run reached its time limit; the batch goes again.")
            break
        except Exception:  # a fault of ours or of a library: the sink backs off, the task goes on
            logger.exception("audit sink %s: delivery failed on an unexpected error", sink.pk)
            error = DeliveryError("sink_failed", "Delivery failed on an internal error (logged).")
            break
    return error


def _advance(sink: AuditSink, seq: int) -> bool:
    """Move the cursor past an acknowledged batch, unless the sink was reconfigured meanwhile."""
    with rls_scope(sink.tenant_id):
        moved = AuditSink.objects.filter(
            tenant_id=sink.tenant_id, pk=sink.pk, cursor=sink.cursor, updated_at=sink.updated_at
        ).update(
            cursor=seq, delivered_at=timezone.now(), failures=0, next_attempt_at=None, last_error_code="", last_error=""
        )
    return bool(moved)


def _failed(sink: AuditSink, error: DeliveryError) -> None:
    failures = sink.failures + 1
    with rls_scope(sink.tenant_id):
        AuditSink.objects.filter(tenant_id=sink.tenant_id, pk=sink.pk, updated_at=sink.updated_at).update(
            failures=F("failures") + 1,
            next_attempt_at=timezone.now() + _backoff(failures),
            last_error_code=error.code[:64],
            last_error=error.message[:500],
        )


def sinks_due(now: datetime | None = None) -> list[tuple[int, int]]:
    """(tenant id, sink id) of every enabled sink of an active tenant with events waiting and no
    back-off pending (one short query per tenant, each in its own tenant's scope), the least
    recently delivered first: the delivery slots go round, and a sink that always has events
    waiting does not take them at every turn."""
    now = now or timezone.now()
    due = []
    # An event past the cursor, read from the events (the (tenant_id, seq) index), not from the
    # chain's head: that table is unlogged, and empty after a crash until the next append.
    waiting = Exists(AuditEvent.objects.filter(tenant_id=OuterRef("tenant_id"), seq__gt=OuterRef("cursor")))
    for tenant_id in Tenant.objects.filter(status=Tenant.Status.ACTIVE).values_list("pk", flat=True):
        with rls_scope(tenant_id):
            due += (
                AuditSink.objects.filter(tenant_id=tenant_id, enabled=True)
                .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
                .filter(waiting)
                .values_list("delivered_at", "tenant_id", "pk")
            )
    due.sort(key=lambda sink: (sink[0] is not None, sink[0] or now, sink[2]))
    return [(tenant_id, sink_id) for _, tenant_id, sink_id in due]
