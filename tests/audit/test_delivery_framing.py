"""RFC 5424 framing of what a syslog sink receives, read by a real TCP listener in the test:
every PARAM-VALUE escaped and sent in UTF-8, whatever an event's stored outcome holds (found by a
review: an outcome was written unescaped, and a non-ASCII one stopped the sink for good)."""

import re

from django.db import connection

from apps.audit.delivery import sink_deliver
from tests.audit.test_delivery import loopback_allowed, receiver, syslog_sink  # noqa: F401

_ESCAPED = re.compile(rb'\\(["\\\]])')


def _append_outcome(chain: int, outcome: str) -> int:
    """An event appended through the platform's own SQL function (what an import's rows and
    audit_record go through; the function and the column take any outcome text)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT seq FROM public.audit_append(%s, 'user', 'user:1', 'thing.odd', '', '', %s,"
            " '127.0.0.1', 'pytest', '', '{}', NULL, NULL)",
            [chain, outcome],
        )
        return cursor.fetchone()[0]


def parse_rfc5424(message: bytes) -> dict:
    """A strict RFC 5424 reading: header, then SD-ELEMENTs (PARAM-VALUE escapes \\" \\\\ \\]), then
    SP and MSG. Raises ValueError on a message the grammar does not allow."""
    header = re.match(rb"^<(\d{1,3})>1 (\S+) (\S+) (\S+) (\S+) (\S+) ", message)
    if not header:
        raise ValueError("header")
    rest = message[header.end() :]
    params: dict[bytes, bytes] = {}
    if rest.startswith(b"-"):
        rest = rest[1:]
    else:
        while rest.startswith(b"["):
            element = re.match(rb'^\[([^ =\]"]+)', rest)
            if not element:
                raise ValueError("sd-id")
            rest = rest[element.end() :]
            while rest.startswith(b" "):
                m = re.match(rb'^ ([^ =\]"]{1,32})="((?:[^"\\\]]|\\.)*)"', rest)
                if not m:
                    raise ValueError(f"sd-param at {rest[:40]!r}")
                params[m.group(1)] = _ESCAPED.sub(rb"\1", m.group(2))
                rest = rest[m.end() :]
            if not rest.startswith(b"]"):
                raise ValueError(f"sd-element end at {rest[:40]!r}")
            rest = rest[1:]
    if rest and not rest.startswith(b" "):
        raise ValueError(f"no SP before MSG: {rest[:40]!r}")
    return {"msgid": header.group(6), "params": params, "msg": rest[1:]}


def test_an_outcome_holding_quote_and_bracket_is_escaped_in_structured_data(acme, receiver, loopback_allowed):  # noqa: F811
    """An event whose stored outcome holds `"` or `]` (audit_append and the column take any text:
    an imported archive's rows are not checked) is framed with the value escaped (RFC 5424
    §6.3.3), as `id` is. Unescaped, it closed the SD-ELEMENT early, and an RFC 5424 receiver read
    the rest of the structured data as the MSG."""
    listener = receiver()
    sink = syslog_sink(acme, listener.port)
    seq = _append_outcome(acme.pk, 'no"] x')
    result = sink_deliver(tenant_id=acme.pk, sink_id=sink.pk, retry_delays=())
    assert result.status == "delivered", result
    odd = [m for m in listener.messages if f'seq="{seq}"'.encode() in m]
    assert len(odd) == 1
    parsed = parse_rfc5424(odd[0])  # ValueError: the frame is not RFC 5424
    assert parsed["params"][b"outcome"] == b'no"] x'
    assert parsed["msg"].startswith(b"\xef\xbb\xbf{")


def test_a_non_ascii_outcome_does_not_stop_the_sinks_delivery_for_good(acme, receiver, loopback_allowed):  # noqa: F811
    """A PARAM-VALUE is UTF-8 (RFC 5424 §6.3.3): an event whose outcome holds a non-ASCII letter
    (an imported archive's) is sent, its value in UTF-8. Framed as ASCII, it raised
    UnicodeEncodeError at every attempt (`sink_failed`), and the sink backed off forever: no
    event after it was ever delivered."""
    listener = receiver()
    sink = syslog_sink(acme, listener.port)
    seq = _append_outcome(acme.pk, "réussi")
    result = sink_deliver(tenant_id=acme.pk, sink_id=sink.pk, retry_delays=())
    assert result.status == "delivered", (result.status, result.error and result.error.code)
    assert result.cursor >= seq
