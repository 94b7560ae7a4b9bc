"""SSRF-safe outbound HTTP: declared hosts only, public addresses only (after DNS), every hop checked."""

import gzip
import ipaddress
import shutil
import socket
import ssl
import subprocess
import threading
import time

import pytest

from foundry.runtime import network, provider_http
from foundry.runtime.network import FetchError, NetworkPolicy, address_class, fetch, host_allowed
from tests.runtime.conftest import Server, reply

LOOPBACK = NetworkPolicy(allow_private=True)


def _refused(code: str, *args, **kwargs) -> FetchError:
    with pytest.raises(FetchError) as info:
        fetch(*args, **kwargs)
    assert info.value.code == code, info.value.message
    return info.value


def test_it_refuses_a_loopback_server_by_default(server):
    server.routes["/ping"] = reply(body=b'{"ok": true}')
    error = _refused("http_address_refused", "GET", f"{server.origin}/ping", hosts=["127.0.0.1"], timeout=2)
    assert "127.0.0.1" in error.message and "loopback" in error.message
    assert server.requests == []


def test_it_reaches_a_loopback_server_when_private_addresses_are_allowed(server):
    server.routes["/ping"] = reply(body=b'{"ok": true}')
    result = fetch("GET", f"{server.origin}/ping", hosts=["127.0.0.1"], timeout=2, policy=LOOPBACK)
    assert (result.status, result.body, result.content_type) == (200, b'{"ok": true}', "application/json")
    assert server.requests[0]["host"] == f"127.0.0.1:{server.port}"


def test_it_refuses_the_cloud_metadata_address_even_when_private_addresses_are_allowed():
    started = time.monotonic()
    error = _refused(
        "http_address_refused",
        "GET",
        "http://169.254.169.254/latest/meta-data/",
        hosts=["169.254.169.254"],
        timeout=2,
        policy=LOOPBACK,
    )
    assert "link-local" in error.message
    assert time.monotonic() - started < 0.5  # refused before any connection attempt


def test_it_refuses_a_name_that_resolves_to_a_private_address(server):
    server.routes["/ping"] = reply(body=b"{}")
    error = _refused(
        "http_address_refused", "GET", f"http://localhost:{server.port}/ping", hosts=["localhost"], timeout=2
    )
    assert "'localhost' resolves to" in error.message
    assert server.requests == []


def test_it_connects_to_the_checked_address_with_the_real_host_header(server):
    server.routes["/v1/x"] = reply(body=b"{}")
    resolved = []

    def resolver(host, port):
        resolved.append((host, port))
        return ["127.0.0.1"]

    fetch(
        "GET",
        f"http://registry.test:{server.port}/v1/x",
        hosts=["registry.test"],
        timeout=2,
        policy=LOOPBACK,
        resolver=resolver,
    )
    assert resolved == [("registry.test", server.port)]  # resolved once, by the checker
    assert server.requests[0]["host"] == f"registry.test:{server.port}"


def test_it_refuses_an_undeclared_host_before_resolving_it(server):
    def resolver(host, port):
        raise AssertionError("an undeclared host must not even be resolved")

    _refused(
        "http_host_undeclared",
        "GET",
        f"http://evil.test:{server.port}/",
        hosts=["registry.test", "*.example.com"],
        timeout=2,
        policy=LOOPBACK,
        resolver=resolver,
    )


def test_it_refuses_a_redirect_to_another_private_address(server, other_server):
    other_server.routes["/secret"] = reply(body=b"secret")
    server.routes["/go"] = reply(302, headers={"Location": f"{other_server.origin}/secret"})
    only_first = NetworkPolicy(allowed_networks=(ipaddress.ip_network("127.0.0.1/32"),))
    error = _refused(
        "http_address_refused",
        "GET",
        f"{server.origin}/go",
        hosts=["127.0.0.1", "127.0.0.2"],
        timeout=2,
        policy=only_first,
    )
    assert "127.0.0.2" in error.message
    assert [r["path"] for r in server.requests] == ["/go"]
    assert other_server.requests == []


def test_it_refuses_a_redirect_to_the_metadata_address(server):
    server.routes["/go"] = reply(302, headers={"Location": "http://169.254.169.254/latest/meta-data/"})
    _refused(
        "http_address_refused",
        "GET",
        f"{server.origin}/go",
        hosts=["127.0.0.1", "169.254.169.254"],
        timeout=2,
        policy=LOOPBACK,
    )


def test_it_refuses_a_redirect_to_an_undeclared_host_or_scheme(server):
    server.routes["/elsewhere"] = reply(301, headers={"Location": "http://evil.test/"})
    server.routes["/file"] = reply(302, headers={"Location": "file:///etc/passwd"})
    url = f"{server.origin}"
    _refused("http_host_undeclared", "GET", url + "/elsewhere", hosts=["127.0.0.1"], timeout=2, policy=LOOPBACK)
    _refused("http_scheme_refused", "GET", url + "/file", hosts=["127.0.0.1"], timeout=2, policy=LOOPBACK)


def test_it_follows_at_most_three_redirects(server):
    for i in range(5):
        server.routes[f"/r{i}"] = reply(307, headers={"Location": f"/r{i + 1}"})
    server.routes["/r3"] = reply(body=b"{}")
    result = fetch("GET", f"{server.origin}/r0", hosts=["127.0.0.1"], timeout=2, policy=LOOPBACK)
    assert result.status == 200 and len(result.redirects) == 3
    server.routes["/r3"] = reply(307, headers={"Location": "/r4"})
    _refused("http_too_many_redirects", "GET", f"{server.origin}/r0", hosts=["127.0.0.1"], timeout=2, policy=LOOPBACK)


def test_a_303_turns_a_post_into_a_get_without_body(server):
    server.routes["/submit"] = reply(303, headers={"Location": "/done"})
    server.routes["/done"] = reply(body=b"{}")
    fetch("POST", f"{server.origin}/submit", hosts=["127.0.0.1"], timeout=2, policy=LOOPBACK, json_body={"a": 1})
    assert [(r["method"], r["body"]) for r in server.requests] == [("POST", b'{"a":1}'), ("GET", b"")]


def test_it_bounds_the_response_size(server):
    big = b"x" * 2048
    server.routes["/declared"] = reply(body=big, content_type="text/plain")

    def undeclared(handler):  # no Content-Length: the body ends when the connection closes
        handler.send_response(200)
        handler.send_header("Content-Type", "text/plain")
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.wfile.write(big)
        handler.close_connection = True

    server.routes["/streamed"] = undeclared
    small = NetworkPolicy(allow_private=True, max_response_bytes=1024)
    for path in ("/declared", "/streamed"):
        _refused("http_response_too_large", "GET", server.origin + path, hosts=["127.0.0.1"], timeout=2, policy=small)
    fine = fetch("GET", server.origin + "/declared", hosts=["127.0.0.1"], timeout=2, policy=LOOPBACK)
    assert fine.body == big


def test_it_bounds_a_compressed_response_by_its_inflated_size(server):
    bomb = gzip.compress(b"\0" * (4 * 1024 * 1024))  # ~4 KB on the wire, 4 MiB inflated
    server.routes["/bomb"] = reply(body=bomb, content_type="text/plain", headers={"Content-Encoding": "gzip"})
    server.routes["/ok"] = reply(
        body=gzip.compress(b"hello"), content_type="text/plain", headers={"Content-Encoding": "gzip"}
    )
    _refused("http_response_too_large", "GET", server.origin + "/bomb", hosts=["127.0.0.1"], timeout=2, policy=LOOPBACK)
    assert fetch("GET", server.origin + "/ok", hosts=["127.0.0.1"], timeout=2, policy=LOOPBACK).body == b"hello"


def test_it_bounds_the_time(server):
    release = threading.Event()

    def slow(handler):
        release.wait(3)
        reply(body=b"{}")(handler)

    server.routes["/slow"] = slow
    started = time.monotonic()
    try:
        _refused("http_timeout", "GET", server.origin + "/slow", hosts=["127.0.0.1"], timeout=0.3, policy=LOOPBACK)
    finally:
        release.set()
    assert time.monotonic() - started < 1.5


def test_a_server_trickling_its_answer_cannot_stretch_the_exchange(trickler):
    # A byte of header every 0.1 s restarts a per-read clock; the exchange still ends at its deadline.
    started = time.monotonic()
    _refused("http_timeout", "GET", trickler + "/", hosts=["127.0.0.1"], timeout=0.5, policy=LOOPBACK)
    assert time.monotonic() - started < 1.5


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("192.168.0.1", "private"),
        ("100.64.0.1", "non-public"),
        ("169.254.169.254", "link-local"),
        ("224.0.0.1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::1", "loopback"),
        ("fe80::1", "link-local"),
        ("fd00::1", "private"),
        ("::ffff:127.0.0.1", "loopback"),
        ("2002:7f00:1::1", "loopback"),
        ("64:ff9b::a9fe:a9fe", "link-local"),
        ("fec0::1", "site-local"),  # deprecated site-local: ipaddress calls it global
        ("feff:ffff::1", "site-local"),
        ("8.8.8.8", None),
        ("2606:4700:4700::1111", None),
    ],
)
def test_address_classes(address, kind):
    assert address_class(ipaddress.ip_address(address)) == kind


def test_a_name_resolving_to_a_site_local_address_is_refused_before_connecting():
    with pytest.raises(FetchError) as info:
        fetch("GET", "http://svc.example.com/", hosts=["svc.example.com"], timeout=2, resolver=lambda h, p: ["fec0::1"])
    assert info.value.code == "http_address_refused"


def test_declared_host_patterns():
    patterns = ["registry.example.com", "*.api.test", "pinned.test:8443"]
    assert host_allowed("registry.example.com", None, patterns)
    assert host_allowed("eu.api.test", None, patterns)
    assert not host_allowed("api.test", None, patterns)  # a wildcard does not match the apex
    assert not host_allowed("evilapi.test", None, patterns)
    assert host_allowed("pinned.test", 8443, patterns)
    assert not host_allowed("pinned.test", 8444, patterns)
    assert not host_allowed("registry.example.com.evil.test", None, patterns)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make a certificate")
def test_https_sends_the_real_name_as_sni_and_verifies_the_certificate(tmp_path):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"),
            *("-subj", "/CN=registry.test", "-keyout", str(key), "-out", str(cert), "-days", "1"),
        ],
        check=True,
        capture_output=True,
    )
    seen = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda sock, name, ctx: seen.append(name)
    tls = Server()
    tls.httpd.socket = context.wrap_socket(tls.httpd.socket, server_side=True)
    try:
        # The certificate is self-signed, so verification must fail — after SNI was sent.
        error = _refused(
            "http_failed",
            "GET",
            f"https://registry.test:{tls.port}/",
            hosts=["registry.test"],
            timeout=2,
            policy=LOOPBACK,
            resolver=lambda host, port: ["127.0.0.1"],
        )
    finally:
        tls.close()
    assert seen == ["registry.test"]
    assert "CERTIFICATE_VERIFY_FAILED" in error.message


def test_clients_share_one_verifying_context_made_once_per_process(monkeypatch):
    """Each HTTP tool call, webhook delivery and provider client read the whole CA bundle twice
    (~70 ms); the verifying context is made once per process and shared, still verifying."""
    loads = []
    load = ssl.SSLContext.load_verify_locations

    def counted(self, *args, **kwargs):
        loads.append(args)
        return load(self, *args, **kwargs)

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counted)
    network._verifying_context.cache_clear()
    provider_http._verifying_context.cache_clear()
    for _ in range(3):
        network.deadline_client(time.monotonic() + 5).close()
        provider_http.http_client(NetworkPolicy()).close()
    assert len(loads) == 2  # httpx's context and httpx2's
    for context in (network._verifying_context(), provider_http._verifying_context()):
        assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_per_hop_headers_are_asked_again_after_a_redirect(server, other_server):
    """A credential meant for one host never follows a redirect to another."""
    other_server.routes["/landing"] = reply(body=b"{}")
    server.routes["/go"] = reply(302, headers={"Location": f"{other_server.origin}/landing"})
    policy = NetworkPolicy(allow_private=True)

    def headers(host_header: str, scheme: str) -> dict:
        return {"Authorization": "Bearer for-the-first-host"} if host_header.startswith("127.0.0.1") else {}

    result = fetch(
        "GET", f"{server.origin}/go", hosts=["127.0.0.1", "127.0.0.2"], timeout=5, policy=policy, hop_headers=headers
    )
    assert result.status == 200
    assert server.requests[0]["authorization"] == "Bearer for-the-first-host"
    assert other_server.requests[0]["authorization"] is None


def test_localhost_names_are_loopback(server):
    """RFC 6761: *.localhost resolves to loopback here too — and is refused like any loopback."""
    server.routes["/x"] = reply(body=b"{}")
    url = f"http://acme.localhost:{server.port}/x"
    loopback = NetworkPolicy(allow_private=True)
    assert fetch("GET", url, hosts=["acme.localhost"], timeout=5, policy=loopback).status == 200
    assert server.requests[0]["host"] == f"acme.localhost:{server.port}"
    with pytest.raises(FetchError) as refused:
        fetch("GET", url, hosts=["acme.localhost"], timeout=5)
    assert refused.value.code == "http_address_refused"


def test_a_name_whose_dns_never_answers_does_not_hold_up_the_lookups_of_other_names(server, monkeypatch):
    """An agent calling a declared host whose nameserver never answers: each call ends at its
    deadline while its lookup still waits for the system resolver. However many such calls it
    makes, another name (another run's host, a provider's) is still resolved and reached: the
    lookups left waiting are bounded per name, and past the bound the stalled name fails at once."""
    release = threading.Event()
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if host == "stall.example.com":  # black-holed
            release.wait(30)
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    server.routes["/ok"] = reply(body=b'{"ok": true}')
    try:
        for _ in range(network.LOOKUPS_PER_NAME + 4):
            started = time.monotonic()
            with pytest.raises(FetchError) as stalled:
                fetch("GET", "http://stall.example.com/", hosts=["stall.example.com"], timeout=0.2)
            assert stalled.value.code == "http_timeout"
            assert time.monotonic() - started < 2
        result = fetch(
            "GET",
            f"http://localhost:{server.port}/ok",
            hosts=["localhost"],
            timeout=2,
            policy=NetworkPolicy(allow_private=True),
        )
        assert result.status == 200
    finally:
        release.set()
    deadline = time.monotonic() + 10
    while network._pending and time.monotonic() < deadline:  # the stalled lookups end once answered
        time.sleep(0.01)
    assert not network._pending
