"""foundry/otlp_encoding.py builds the very message opentelemetry-exporter-otlp's encoder builds."""

import logging

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as library_encode_spans
from opentelemetry.exporter.otlp.proto.http import trace_exporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.span import TraceState

from foundry import otlp_encoding
from foundry.otlp_encoding import encode_spans


def _provider(resource: Resource, exporter: InMemorySpanExporter, **limits) -> TracerProvider:
    provider = TracerProvider(resource=resource, span_limits=SpanLimits(**limits) if limits else None)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def _spans_of_every_shape() -> list[ReadableSpan]:
    exporter = InMemorySpanExporter()
    main = _provider(Resource.create({"service.name": "foundry-web", "deployment": "test"}), exporter)
    other = _provider(
        Resource({"service.name": "foundry-worker", "flags": [True, False]}, schema_url="https://example.test/1.0"),
        exporter,
        max_span_attributes=2,
        max_events=1,
        max_links=1,
        max_event_attributes=1,
    )
    web = main.get_tracer("foundry")
    web_again = main.get_tracer("foundry")  # an equal scope, another object
    versioned = main.get_tracer(
        "opentelemetry.instrumentation.psycopg", "0.66b1", schema_url="https://example.test/s", attributes={"a": 1}
    )
    worker = other.get_tracer("foundry.runtime")
    remote = SpanContext(
        trace_id=0x0AF7651916CD43DD8448EB211C80319C,
        span_id=0xB7AD6B7169203331,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
        trace_state=TraceState([("vendor", "value"), ("other", "x")]),
    )
    with web.start_as_current_span(
        "GET api/v1/runs/<str:run_id>",
        kind=SpanKind.SERVER,
        context=trace.set_span_in_context(NonRecordingSpan(remote)),
        attributes={
            "http.method": "GET",
            "http.status_code": 200,
            "tenant.id": 7,
            "ratio": 0.25,
            "cached": False,
            "scopes": ("read", "write"),
            "ids": [1, 2, 3],
            "weights": [0.5, 1.5],
            "empty": [],
            "payload": b"\x00\xff",
        },
    ) as server:
        server.add_event("retry", {"attempt": 2, "reason": "timeout"})
        server.add_event("bare")
        server.set_status(Status(StatusCode.ERROR, "the database went away"))
        for kind in (SpanKind.INTERNAL, SpanKind.CLIENT, SpanKind.PRODUCER, SpanKind.CONSUMER):
            with versioned.start_as_current_span(
                f"SELECT {kind.name}", kind=kind, attributes={"db.system": "postgresql"}
            ):
                pass
        with web_again.start_as_current_span("agent.step", links=[Link(remote, {"link.kind": "follows"})]) as step:
            step.set_status(Status(StatusCode.OK))
            try:
                raise ValueError("refused")
            except ValueError as error:
                step.record_exception(error)
    # Beyond the limits: dropped attributes, events, links and event attributes are counted.
    with worker.start_as_current_span(
        "chat scripted-1",
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "scripted-1",
            "gen_ai.usage.input_tokens": 3,
        },
        links=[Link(remote), Link(remote, {"n": 2})],
    ) as chat:
        chat.add_event("one", {"a": 1, "b": 2})
        chat.add_event("two")
    with web.start_as_current_span("no attributes at all", kind=SpanKind.INTERNAL):
        pass
    return list(exporter.get_finished_spans())


def test_every_shape_of_span_encodes_to_the_librarys_message():
    spans = _spans_of_every_shape()
    assert len(spans) == 8
    ours, theirs = encode_spans(spans), library_encode_spans(spans)
    assert ours == theirs
    assert ours.SerializeToString(deterministic=True) == theirs.SerializeToString(deterministic=True)
    # The shapes the comparison is about are really there.
    assert len(ours.resource_spans) == 2
    assert [len(r.scope_spans) for r in ours.resource_spans] == [2, 1]
    chat = ours.resource_spans[1].scope_spans[0].spans[0]
    assert (chat.dropped_attributes_count, chat.dropped_events_count, chat.dropped_links_count) == (1, 1, 1)
    server = next(s for r in ours.resource_spans for ss in r.scope_spans for s in ss.spans if s.kind == 2)
    assert server.trace_state == "vendor=value,other=x"
    assert server.flags == 0x300  # the parent is remote
    assert server.status.code == 2 and server.status.message == "the database went away"


def test_spans_of_one_batch_in_any_order_group_as_in_the_library():
    spans = _spans_of_every_shape()
    shuffled = spans[::-1] + spans[::2]
    assert encode_spans(shuffled) == library_encode_spans(shuffled)
    assert encode_spans([]) == library_encode_spans([])


def test_a_value_of_no_otlp_type_is_left_out_as_the_library_leaves_it_out(caplog):
    span = _spans_of_every_shape()[0]
    odd = ReadableSpan(
        name="odd",
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes={"kept": "yes", "object": object(), "after": 1},
        kind=SpanKind.INTERNAL,
        status=Status(StatusCode.UNSET),
        start_time=1,
        end_time=2,
        instrumentation_scope=span.instrumentation_scope,
    )
    with caplog.at_level(logging.ERROR):
        ours = encode_spans([odd])
    assert [a.key for a in ours.resource_spans[0].scope_spans[0].spans[0].attributes] == ["kept", "after"]
    assert "Failed to encode key object" in caplog.text
    assert ours == library_encode_spans([odd])


def _finished(record) -> list[ReadableSpan]:
    exporter = InMemorySpanExporter()
    provider = _provider(Resource.create({"service.name": "foundry-web"}), exporter)
    with provider.get_tracer("foundry").start_as_current_span("GET /x") as span:
        record(span)
    return list(exporter.get_finished_spans())


@pytest.mark.parametrize(
    "record",
    [
        pytest.param(lambda s: s.set_attributes({"input": "\ud800", "ok": "kept"}), id="string-value"),
        pytest.param(lambda s: s.set_attributes({"\udcff": 1, "ok": "kept"}), id="key"),
        pytest.param(lambda s: s.add_event("e", {"text": "bad \udcff", "ok": "kept"}), id="event-attribute"),
        pytest.param(lambda s: s.record_exception(ValueError("bad byte \udcff")), id="record_exception"),
    ],
)
def test_an_attribute_protobuf_cannot_hold_is_left_out_and_the_span_kept(record, caplog):
    """A key or text with a lone surrogate (`json.loads('"\\ud800"')` of a request's input, an
    exception message quoting one) cannot be encoded: that attribute is dropped and logged, as
    the library drops it, and the span — and the batch it rides in — is exported."""
    spans = _finished(record)
    with caplog.at_level(logging.CRITICAL):
        ours = encode_spans(spans)
        assert ours == library_encode_spans(spans)
    keys = [a.key for a in ours.resource_spans[0].scope_spans[0].spans[0].attributes]
    keys += [a.key for e in ours.resource_spans[0].scope_spans[0].spans[0].events for a in e.attributes]
    assert "\udcff" not in keys and "input" not in keys


@pytest.fixture
def restored_exporter_encoder():
    original = trace_exporter.encode_spans
    yield
    trace_exporter.encode_spans = original


def test_the_http_exporter_encodes_with_it_once_installed(restored_exporter_encoder):
    # The exporter looks `encode_spans` up in its module at every export: the name `install` sets.
    assert "encode_spans" in trace_exporter.OTLPSpanExporter.export.__code__.co_names
    otlp_encoding.install()
    assert trace_exporter.encode_spans is encode_spans
