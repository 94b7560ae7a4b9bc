"""A request body sent chunked (`Transfer-Encoding: chunked`, no Content-Length: a client streaming
a body of unknown length, RFC 9112 §6.1) through the production server (gunicorn) is read as the
same bytes sent with a Content-Length would be (foundry/wsgi.py). Django reads Content-Length
bytes, none without one: `PUT /api/v1/retention {"runs_days": 30}` was answered 200 with the
policy unchanged."""

import http.client
import io
import json

import pytest
from django.core.exceptions import RequestDataTooBig

from foundry.wsgi import Request
from tests.api.conftest import issue


def _send(port: int, method: str, path: str, host: str, token: str, payload: bytes, *, chunked: bool):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.putrequest(method, path, skip_host=True)
    conn.putheader("Host", host)
    conn.putheader("Authorization", f"Bearer {token}")
    conn.putheader("Content-Type", "application/json")
    if chunked:
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        half = len(payload) // 2
        for piece in (payload[:half], payload[half:]):
            conn.send(b"%x\r\n%s\r\n" % (len(piece), piece))
        conn.send(b"0\r\n\r\n")
    else:
        conn.putheader("Content-Length", str(len(payload)))
        conn.endheaders()
        conn.send(payload)
    response = conn.getresponse()
    status, data = response.status, response.read()
    conn.close()
    return status, json.loads(data)


def test_a_chunked_body_is_read(live_port, fresh_tenant, django_db_blocker):
    with django_db_blocker.unblock():
        token = issue(fresh_tenant, role="owner", scopes=("read", "admin"))
    host = f"{fresh_tenant.slug}.localhost"
    status, body = _send(live_port, "PUT", "/api/v1/retention", host, token, b'{"runs_days": 30}', chunked=True)
    assert (status, body["runs_days"]) == (200, 30), body
    assert _send(live_port, "GET", "/api/v1/retention", host, token, b"", chunked=False)[1]["runs_days"] == 30


def _request(body: bytes, **environ) -> Request:
    return Request(
        {
            "REQUEST_METHOD": "PUT",
            "PATH_INFO": "/api/v1/retention",
            "wsgi.input": io.BytesIO(body),
            "wsgi.input_terminated": True,
            "HTTP_TRANSFER_ENCODING": "chunked",
            **environ,
        }
    )


def test_a_chunked_body_past_the_limit_is_too_big_as_one_with_its_length_would_be(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    assert _request(b"x" * 100).body == b"x" * 100
    with pytest.raises(RequestDataTooBig):
        _request(b"x" * 101).body  # noqa: B018 (reading it is the point)
    # A Content-Length, or a server that does not end the input at the last chunk: as Django has it.
    assert _request(b"x" * 10, CONTENT_LENGTH="4").body == b"xxxx"
    assert _request(b"x" * 10, **{"wsgi.input_terminated": False}).body == b""


def test_a_chunked_body_is_read_on_the_asgi_server_too(mcp_port, fresh_tenant, django_db_blocker):
    """foundry.asgi serves every path with Django too (bin/dev's Procfile runs uvicorn for the
    whole web), and Django's ASGIRequest set no CONTENT_LENGTH for a chunked body."""
    with django_db_blocker.unblock():
        token = issue(fresh_tenant, role="owner", scopes=("read", "admin"))
    host = f"{fresh_tenant.slug}.localhost"
    status, body = _send(mcp_port, "PUT", "/api/v1/retention", host, token, b'{"runs_days": 30}', chunked=True)
    assert (status, body["runs_days"]) == (200, 30), body


def test_a_chunked_form_past_the_limit_is_refused_not_read_as_an_empty_one(settings):
    """Cut to the limit, a multipart form parsed as no fields and no files: the import page said
    the archive was missing. Refused, whatever reads it; with its length, the same form is read."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = (
        b'--XX\r\nContent-Disposition: form-data; name="archive"; filename="a.zip"\r\n'
        b"Content-Type: application/zip\r\n\r\n" + b"A" * 5000 + b"\r\n"
        b'--XX\r\nContent-Disposition: form-data; name="slug"\r\n\r\nfoo\r\n--XX--\r\n'
    )
    base = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/tenants/import/",
        "CONTENT_TYPE": "multipart/form-data; boundary=XX",
    }
    with_length = Request({**base, "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body))})
    assert with_length.FILES["archive"].size == 5000 and with_length.POST["slug"] == "foo"
    chunked = {**base, "wsgi.input_terminated": True, "HTTP_TRANSFER_ENCODING": "chunked"}
    with pytest.raises(RequestDataTooBig):
        Request({**chunked, "wsgi.input": io.BytesIO(body)}).FILES  # noqa: B018 (reading it is the point)
    with pytest.raises(RequestDataTooBig):
        Request({**chunked, "wsgi.input": io.BytesIO(body)}).read()
