"""A fetch whose wants end in a delim-pkt (0001, which dulwich reads as a flush) still has each wanted
commit negotiated once (apps/catalog/git_http.py `_wants_once`)."""

from django_tenants.utils import schema_context

from apps.catalog import git_http
from apps.catalog.history import history_build
from tests.catalog.conftest import example, publish
from tests.catalog.test_git_bounds import _client, _fetch, _pkt


def test_repeated_wants_ended_by_a_delim_pkt_are_still_negotiated_once(acme, monkeypatch):
    """dulwich reads a delim-pkt (`0001`) exactly as a flush (dulwich/protocol.py read_pkt_line:
    "None for a flush-pkt ('0000') or delim-pkt ('0001')"), so it ends the want list as `0000` does.
    `_wants_once` only takes `0000` as the end of the wants and on `0001` hands the body on
    untouched: the 75,000 repeated wants the commit meant to collapse (a worker held ~11 s beside
    4,096 haves) reach the negotiation again, and the old MAX_WANTS cap is gone. Expected: the
    same fetch with `0001` instead of `0000` is handed to dulwich with its want once (or refused)."""
    publish(acme, example("domains/finance.yaml"))
    publish(acme, example("agents/invoice-triage.yaml"))
    with schema_context(acme.schema_name):
        repo = history_build()
    first, head = repo.refs[b"refs/tags/dis/finance/v1"], repo.refs[b"refs/heads/main"]
    body = (
        _pkt(b"want " + first + b" multi_ack side-band-64k thin-pack ofs-delta\n")
        + _pkt(b"want " + first + b"\n") * 75_000
        + b"0001"
        + _pkt(b"have " + head + b"\n") * 4096
        + _pkt(b"done\n")
    )
    handed = []
    handler = git_http._handler

    def counting(proto, *, advertise):
        read = proto.read_pkt_line

        def read_counted():
            line = read()
            if line is not None and line.startswith(b"want "):
                handed.append(line)
            return line

        proto.read_pkt_line = read_counted
        return handler(proto, advertise=advertise)

    monkeypatch.setattr(git_http, "_handler", counting)
    response = _fetch(_client(acme), body)  # now: 200 after ~9 s, dulwich read 75,001 want lines
    assert response.status_code in (400, 413) or len(handed) == 1, f"dulwich read {len(handed)} want lines"
