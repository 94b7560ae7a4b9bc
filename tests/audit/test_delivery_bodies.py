"""What SIEM push delivery sends is strict JSON, whatever details an event holds."""


def test_details_holding_a_json_number_beyond_a_double_are_delivered_as_json(acme):
    """`{"size":1e400}` is JSON (the grammar does not bound a number), which audit_append stores (an
    imported archive's chain, an edit the verifier reports). Python reads it as infinity, which it
    writes back as `Infinity`, no JSON: a webhook receiver refused the whole batch at every retry.
    Its details are given as their stored text, as those that are not plain JSON are
    (docs/audit-siem.md): every body is strict JSON."""
    import json

    from django.db import connection

    from apps.audit.delivery import syslog_frame, webhook_body
    from apps.audit.models import AuditEvent, AuditSink
    from apps.audit.scope import rls_scope

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT seq FROM public.audit_append(%s, 'user', 'user:1', 'thing.odd', '', '', 'success',"
            " '127.0.0.1', 'pytest', '', %s, NULL, NULL)",
            [acme.pk, '{"size":1e400}'],
        )
        seq = cursor.fetchone()[0]
    with rls_scope(acme.pk):
        event = AuditEvent.objects.get(tenant_id=acme.pk, seq=seq)

    def strict(text: str):
        def refuse(constant):
            raise ValueError(f"{constant} is not JSON")

        return json.loads(text, parse_constant=refuse)

    sink = AuditSink(tenant_id=acme.pk, name="hook", kind="webhook", format="jsonl")
    problems = []
    for fmt in ("jsonl", "ocsf"):
        sink.format = fmt
        try:
            strict(webhook_body(sink, [event]).decode("utf-8"))
        except ValueError as exc:
            problems.append(("webhook", fmt, str(exc)))
        frame = syslog_frame(event, fmt, "acme.localhost")
        try:
            strict(frame.split(b"\xef\xbb\xbf", 1)[1].decode("utf-8"))
        except ValueError as exc:
            problems.append(("syslog", fmt, str(exc)))
    assert problems == []
