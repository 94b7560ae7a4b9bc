"""Content Security Policy: every response names where its page may load anything from (django-csp).

The console is served from the platform's own origin and nothing else: scripts (htmx) and
styles from files under /static/, images from there or `data:` (Swagger UI's icons; the usage
charts are inline SVG), no inline script or style, no plugins, no framing, no `<base>`, and forms
submitted only to the page's own origin (settings.CONTENT_SECURITY_POLICY). Markup that got into
a page anyway (a stored name rendered unescaped, say) can run nothing and send nothing elsewhere.

Two page-dependent additions. Signing out of a single sign-on session ends it at the identity
provider too, a redirect from the sign-out form's POST, which browsers hold to that form's
`form-action`: the pages of a member signed in by SSO also allow the origin of the workspace's
current end-session endpoint, where the sign-out will send them (the configuration as the
sign-in flow reads it, kept per process for FOUNDRY_TENANT_ROUTE_TTL). And an error page keeps
its small style inline, allowed by the response's nonce (django-csp), so it is styled even on a
host that serves no static file (an unknown host, a suspended workspace).
"""

import re
from urllib.parse import urlsplit

from csp.middleware import CSPMiddleware, PolicyParts

HOSTNAME = re.compile(r"[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?", re.ASCII)
IPV6 = re.compile(r"[0-9a-f:.]+", re.ASCII)


def origin_of(url: str) -> str | None:
    """`scheme://host[:port]` of an http(s) address as a policy source, or None. Rebuilt from
    the parsed host and port, so nothing else of the address (a `;` starting another directive,
    a space starting another source) can reach the header."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not host:
        return None
    if HOSTNAME.fullmatch(host) is None:
        if IPV6.fullmatch(host) is None:
            return None
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    def process_response(self, request, response):
        response = super().process_response(request, response)
        # SecurityMiddleware sets it too, but not on its own refusals (a host the HTTPS redirect
        # refuses), which only the middleware outside it, this one, sees.
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response

    def get_policy_parts(self, request, response, report_only: bool = False) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        if response.get("Content-Type", "").startswith("text/html") and not report_only:
            logout_origin = _sso_logout_origin(request)
            if logout_origin:
                parts.update = {**(parts.update or {}), "form-action": [logout_origin]}
        return parts


def _sso_logout_origin(request) -> str | None:
    """Where this member's sign-out will redirect: the end-session endpoint's origin of the
    workspace's SSO configuration, for a session signed in by SSO; else None."""
    from apps.identity.oidc import SESSION_ISSUER, sso_config_recent

    session = getattr(request, "session", None)
    if getattr(request, "tenant", None) is None or session is None or not session.get(SESSION_ISSUER):
        return None
    config = sso_config_recent()
    return origin_of(config.end_session_endpoint) if config is not None and config.end_session_endpoint else None
