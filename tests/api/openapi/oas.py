"""Validate real API responses against the published OpenAPI document (/api/schema/)."""

import re

import jsonschema
from django.test import Client


def _convert(node):
    """OpenAPI 3.0 schema -> JSON Schema 2020-12 (nullable)."""
    if isinstance(node, list):
        return [_convert(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _convert(v) for k, v in node.items() if k not in ("nullable", "example", "discriminator")}
    if node.get("nullable"):
        return {"anyOf": [out, {"type": "null"}]}
    return out


_DOC = {}


def document(tenant) -> dict:
    if "doc" not in _DOC:
        response = Client(HTTP_HOST=f"{tenant.slug}.localhost").get("/api/schema/", HTTP_ACCEPT="application/json")
        assert response.status_code == 200
        _DOC["doc"] = response.json()
    return _DOC["doc"]


def _template(doc, method, path):
    path = path.split("?")[0]
    for template, ops in doc["paths"].items():
        regex = "^" + re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(regex, path) and method.lower() in ops:
            return template, ops[method.lower()]
    raise AssertionError(f"{method} {path}: not in the OpenAPI document")


def problems(tenant, method, path, response) -> list[str]:
    """What a generated client would trip on: an undocumented status, or a body not matching."""
    doc = document(tenant)
    template, op = _template(doc, method, path)
    status = str(response.status_code)
    responses = op["responses"]
    where = f"{method} {template} -> {status}"
    if status not in responses:
        return [f"{where}: status not documented (documented: {sorted(responses)})"]
    content = responses[status].get("content")
    if not content:
        body = response.content if not getattr(response, "streaming", False) else b"<stream>"
        return [] if not body else [f"{where}: body {body[:80]!r} but no content documented"]
    if "application/json" not in content:
        return []
    schema = _convert(content["application/json"].get("schema", {}))
    root = {**schema, "components": {"schemas": _convert(doc["components"]["schemas"])}}
    validator = jsonschema.Draft202012Validator(root, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    body = response.json()
    return [
        f"{where}: {'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message[:300]}"
        for e in validator.iter_errors(body)
    ]


def check(tenant, method, path, response):
    found = problems(tenant, method, path, response)
    assert not found, "\n".join(found)
    return response
