"""WCAG 2.1 AA points neither axe-core's crawl (tests/browser/test_accessibility.py) nor
tests/console/test_accessibility*.py guard (found by the accessibility review): reflow at 320 px,
field boundaries and chart segments at 3:1, the empty chart's text at 4.5:1, labels in names,
link purpose in the operator's list, and a confirmation before a token is revoked."""

import re
from itertools import pairwise

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context
from playwright.sync_api import Page, expect

from apps.tokens.models import ApiToken
from tests.billing.test_rollups import ledger_add
from tests.browser.test_console import _sign_in
from tests.conftest import client_for
from tests.console.test_accessibility import Page as Dom
from tests.runs.conftest import FINANCE, TRIAGE, deploy

# --- helpers ---------------------------------------------------------------------------------------


def _luminance(hex_or_rgb: str) -> float:
    if hex_or_rgb.startswith("#"):
        h = hex_or_rgb.lstrip("#")
        rgb = [int(h[i : i + 2], 16) for i in (0, 2, 4)]
    else:
        rgb = [int(float(x)) for x in re.findall(r"[\d.]+", hex_or_rgb)[:3]]
    c = [v / 255 for v in rgb]
    c = [v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4 for v in c]
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]


def contrast(a: str, b: str) -> float:
    la, lb = _luminance(a), _luminance(b)
    return (max(la, lb) + 0.05) / (min(la, lb) + 0.05)


def _owner(acme):
    client = client_for(acme, "owner@acme.test")
    client.raise_request_exception = False
    return client


# --- browser: reflow, non-text contrast, text contrast ---------------------------------------------


@pytest.mark.browser
def test_console_header_reflows_at_320_css_pixels(page: Page, live_port, fresh_tenant):
    """WCAG 1.4.10 Reflow (AA): at a 320 CSS px wide viewport (a 1280 px window zoomed to 400 %) the
    page must not need horizontal scrolling, except for content that needs two dimensions (tables).
    The console header's navigation (`.nav`, display:flex without flex-wrap, 13 links) and the Sign
    out button run off to the right: on every signed-in page the document is ~1400 px wide and a
    zoomed-in user must scroll sideways to reach Members, Audit, Data retention or Sign out.
    Correct: the header wraps (or collapses the menu) within the viewport."""
    base = f"http://{fresh_tenant.slug}.localhost:{live_port}"
    page.set_viewport_size({"width": 320, "height": 800})
    _sign_in(page, f"{base}/", f"owner@{fresh_tenant.slug}.test")
    expect(page.get_by_test_id("current-user")).to_be_attached()
    overflowing = page.evaluate(
        """() => { const w = document.documentElement.clientWidth;
          return [...document.querySelectorAll('header a, header button')]
            .filter(e => e.getBoundingClientRect().left >= w)
            .map(e => e.innerText.trim()); }"""
    )
    assert overflowing == [], f"reachable only by scrolling sideways at 320 px: {overflowing}"


FIELD_BOUNDARY = """() => {
  const bg = el => { for (let n = el.parentElement; n; n = n.parentElement) {
      const c = getComputedStyle(n).backgroundColor; if (c !== 'rgba(0, 0, 0, 0)' && c !== 'transparent') return c; }
      return 'rgb(255, 255, 255)'; };
  return [...document.querySelectorAll('form input[type=text], form input:not([type]), form select, form textarea')]
    .filter(e => e.offsetParent !== null)
    .map(e => { const s = getComputedStyle(e);
      return {name: e.name, border: s.borderTopColor, fill: s.backgroundColor, around: bg(e)}; });
}"""


@pytest.mark.browser
def test_form_fields_are_visible_against_their_background(page: Page, live_port, fresh_tenant):
    """WCAG 1.4.11 Non-text Contrast (AA): the visual information needed to identify a user interface
    component must have 3:1 against adjacent colours. Every console text field and select is drawn
    only by a 1 px #cbd2d9 border on a white field inside a white card (static/css/console.css:
    `input, select { border:1px solid #cbd2d9 }`): 1.5:1 against the card, and the field's own fill
    (#fff, or #efefef for a select) differs from the card by less than 1.2:1. A low-vision user
    cannot see where to type (here: the token issue form; the same rule styles every form).
    Correct: a field border of at least 3:1 against the card (e.g. #7b8794 or darker)."""
    base = f"http://{fresh_tenant.slug}.localhost:{live_port}"
    _sign_in(page, f"{base}/settings/tokens/", f"owner@{fresh_tenant.slug}.test")
    expect(page.get_by_role("heading", name="Issue a token")).to_be_visible()
    fields = page.evaluate(FIELD_BOUNDARY)
    assert fields
    faint = [
        f"{f['name']}: border {contrast(f['border'], f['around']):.2f}:1, fill {contrast(f['fill'], f['around']):.2f}:1"
        for f in fields
        if max(contrast(f["border"], f["around"]), contrast(f["fill"], f["around"])) < 3
    ]
    assert faint == [], f"fields whose boundary is under 3:1 against the card: {faint}"


@pytest.mark.browser
def test_usage_chart_empty_message_has_enough_contrast(page: Page, live_port, fresh_tenant):
    """WCAG 1.4.3 Contrast (Minimum) (AA): a workspace with no usage yet (every new one) sees, in both
    charts of /usage/, "No usage in this period." drawn as SVG text at 14px in #7b8794 on white
    (static/css/usage.css `svg.chart .empty`): 3.66:1, under the 4.5:1 normal-size text needs. axe's
    colour rule does not check SVG <text>, so the crawl misses it. Correct: a darker fill (the
    chart's tick colour #52606d is 6.4:1)."""
    base = f"http://{fresh_tenant.slug}.localhost:{live_port}"
    _sign_in(page, f"{base}/usage/", f"owner@{fresh_tenant.slug}.test")
    empty = page.locator("svg.chart text.empty").first
    expect(empty).to_have_text("No usage in this period.")
    fill, size = empty.evaluate("e => [getComputedStyle(e).fill, getComputedStyle(e).fontSize]")
    assert float(size.removesuffix("px")) < 18.66  # normal-size text: 4.5:1
    assert contrast(fill, "#ffffff") >= 4.5, f"{fill} on white is {contrast(fill, '#ffffff'):.2f}:1"


# --- test client -------------------------------------------------------------------------------------


def test_usage_chart_series_are_not_told_apart_by_colour_alone(acme):
    """WCAG 1.4.1 Use of Color (A) and 1.4.11 Non-text Contrast (AA): the usage charts stack one
    coloured segment per agent (or model) in each day's bar, with no gap, outline, pattern or label:
    which agent a segment is can only be read by matching its fill to the legend swatch
    (apps/billing/charts.py stacked_bars; the per-segment figures are only in <title> tooltips, shown
    on mouse hover, and the chart's <desc> gives totals and the top three only). The palette's second
    colour #e69f00 is 2.25:1 against the white plot, and adjacent segments differ by as little as
    1.12:1 (#009e73 against #cc79a7). Correct: segments separated by a contrasting outline/gap and
    told apart by more than hue (patterns or direct labels), or the figures given as a table."""
    now = timezone.now()
    for agent in ("alpha", "bravo", "charlie", "delta"):
        ledger_add(acme, agent=agent, when=now, tokens=(1000, 100, 0))
    html = client_for(acme, "viewer@acme.test").get("/usage/").content.decode()
    chart = re.search(r'<svg[^>]*data-chart="chart-tokens".*?</svg>', html, re.S).group(0)
    segments = re.findall(
        r'<rect x="([\d.]+)" y="[\d.]+" width="[\d.]+" height="[\d.]+" fill="(#[0-9a-f]{6})"(?:\s+stroke="[^"]*")?>',
        chart,
    )
    by_bar: dict[str, list[str]] = {}
    for x, fill in segments:
        by_bar.setdefault(x, []).append(fill)
    bar = max(by_bar.values(), key=len)
    assert len(bar) == 4, bar
    outlined = "stroke" in chart.split("<rect", 1)[1].split(">", 1)[0] or "pattern" in chart
    weak = [f"{a}/{b} {contrast(a, b):.2f}:1" for a, b in pairwise(bar) if contrast(a, b) < 3]
    weak += [f"{a}/white {contrast(a, '#ffffff'):.2f}:1" for a in bar if contrast(a, "#ffffff") < 3]
    assert outlined or not weak, f"segments told apart by hue alone, under 3:1: {weak}"


def test_version_compare_fields_names_contain_their_visible_labels(acme):
    """WCAG 2.5.3 Label in Name (A): on an agent's (or domain's) page and the diff page, the two
    version fields are labelled on screen "Compare" and "with", but each input's aria-label
    ("Older version", "Newer version", templates/catalog/_version_select.html) replaces the <label>
    text as its accessible name: a speech-input user saying "click Compare" or "with" reaches
    neither field. Correct: an accessible name that contains the visible label (e.g. visible text
    "Compare version" / "with version" and no overriding aria-label)."""
    agent = deploy(acme, FINANCE, TRIAGE)
    with schema_context(acme.schema_name):
        from apps.catalog.services import version_publish
        from tests.conftest import tenant_user

        version_publish(
            actor=tenant_user(acme, "owner@acme.test"),
            source=TRIAGE.replace("Triage incoming invoices", "Sort incoming invoices", 1),
            message="v2",
        )
    dom = Dom(_owner(acme).get(f"/agents/{agent.name}/").content.decode())
    mismatched = []
    for field in ("from", "to"):
        control = dom.find("input", name=field)
        label = next(a for a in control.ancestors() if a.tag == "label")
        visible = (label.text + "").strip()
        name = control.attrs.get("aria-label") or visible
        if visible.lower() not in name.lower():
            mismatched.append(f"visible {visible!r}, accessible name {name!r}")
    assert mismatched == [], mismatched


def test_operator_tenant_links_say_which_tenant_they_act_on(db):
    """WCAG 2.4.4 Link Purpose (In Context) (A): the operator's tenant list has, in every row's
    actions cell, links named just "Limits" and "Export" (templates/tenants/tenant_list.html). Their
    context — the actions cell and its column header "Actions" (the row has no row header) — does not
    say which tenant, so a screen reader's links list shows "Limits, Export, Limits, Export" going to
    different tenants. Correct: "Limits<span class=visually-hidden> of acme</span>" (as the
    members page does for Remove), or the slug cell as <th scope="row">."""
    operator = client_for(None, "operator@platform.test")
    dom = Dom(operator.get("/").content.decode())
    targets: dict[str, set[str]] = {}
    for link in dom.find_all("a"):
        if "href" in link.attrs and not any(a.tag in ("nav", "header") for a in link.ancestors()):
            targets.setdefault(" ".join(link.text_content().split()), set()).add(link.attrs["href"])
    ambiguous = {name: sorted(hrefs) for name, hrefs in targets.items() if len(hrefs) > 1}
    row_headers = [th for th in dom.find_all("th") if th.attrs.get("scope") == "row"]
    assert not ambiguous or row_headers, f"same link text, different destinations: {ambiguous}"


def test_revoking_a_token_is_confirmed_before_it_is_done(acme):
    """WCAG 3.3.4 Error Prevention (Legal, Financial, Data) (AA): an action that deletes or changes
    stored data for good must be reversible, checked, or confirmed. On /settings/tokens/ each
    token's Revoke button posts straight to the revoke view (no confirmation page as providers, SSO
    and audit sinks have, no hx-confirm as member removal has), and a revoked token cannot be
    restored: one stray Enter on a focused Revoke (it is the next Tab stop after the table's last
    cell) breaks every integration using that token. Correct: a confirmation step naming the token."""
    client = _owner(acme)
    page = Dom(client.get("/settings/tokens/").content.decode())
    once = page.find("input", name="once").attrs["value"]
    response = client.post(
        "/settings/tokens/new/",
        {"name": "ci-prod", "role": "viewer", "scopes": ["read"], "expires_in": "", "once": once},
    )
    assert response.status_code in (200, 302), response.status_code
    dom = Dom(client.get("/settings/tokens/").content.decode())
    with schema_context(acme.schema_name):
        token = ApiToken.objects.get(name="ci-prod")
    form = next(f for f in dom.find_all("form") if f.attrs.get("action", "").endswith(f"/{token.pk}/revoke/"))
    confirmed = "hx-confirm" in form.attrs or "onsubmit" in form.attrs
    fields = {
        n.attrs["name"]: n.attrs.get("value", "") for n in form.descendants() if n.tag == "input" and "name" in n.attrs
    }
    client.post(form.attrs["action"], fields)
    with schema_context(acme.schema_name):
        token.refresh_from_db()
    assert confirmed or token.revoked_at is None, "one press of Revoke revoked the token, with no confirmation"
